/**
 * The rotation state machine, as a pure step from one stored CA record to
 * the next (Teleport's phases, docs/protocol.md §10):
 *
 * - `init` (from standby only): a new key set is generated and trusted; the
 *   old one keeps signing.
 * - `update_clients` (from init): the sets swap: the new keys sign, the old
 *   ones stay trusted. The host CA's new key is cross-signed by the old one.
 * - `update_servers` (from update_clients): the auth service's own TLS
 *   certificate comes from the new host CA; nothing else changes.
 * - `rollback` (from init, update_clients or update_servers): the old keys
 *   sign again, the new ones stay trusted until standby; mode becomes manual.
 * - `standby` (from update_servers or rollback): the additional keys are
 *   dropped and remembered as dropped.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import { exportSpki, importPkcs8, keyId } from "../../crypto/keys.ts";
import { randomUuid } from "../../crypto/random.ts";
import { toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { fromBase64, toBase64 } from "../../util/encoding.ts";
import type { CaType } from "../context.ts";
import { crossSign, newKeySet } from "./material.ts";
import {
  MAX_DROPPED_KEYS,
  type RotationMode,
  type RotationPhase,
  type StoredCa,
  type StoredKeySet,
} from "./schema.ts";

/**
 * Default grace period of an automatic rotation (Teleport's code default):
 * each phase lasts 10 h, so a bot renewing every 20 minutes renews many
 * times in each, and a 12 h certificate from the old key has expired long
 * before the old key is dropped.
 */
export const DEFAULT_GRACE_PERIOD_S = 30 * 3600;
/** Shortest grace period accepted (each phase at least a few renewals of a fast test bot). */
export const MIN_GRACE_PERIOD_S = 3;
/** Longest grace period accepted. */
export const MAX_GRACE_PERIOD_S = 90 * 24 * 3600;
/** How long a cross-signed host CA certificate is served after the rotation completes. */
export const CROSS_SIGNED_RETENTION_MS = 30 * 24 * 3600 * 1000;

/** The phases each phase may move to. */
export const NEXT_PHASES: Readonly<Record<RotationPhase, readonly RotationPhase[]>> = {
  standby: ["init"],
  init: ["update_clients", "rollback"],
  update_clients: ["update_servers", "rollback"],
  update_servers: ["standby", "rollback"],
  rollback: ["standby"],
};

/** What a phase change needs besides the record. */
export interface PhaseChange {
  /** The phase to enter. */
  phase: RotationPhase;
  /** Mode (entering init sets it; rollback forces manual; otherwise kept unless given). */
  mode?: RotationMode;
  /** Grace period in seconds (entering init in auto mode). */
  gracePeriodS?: number;
  /** Now. */
  now: Date;
  /** Cluster name (subject of a new X.509 CA). */
  clusterName: string;
}

/**
 * Throws `ROTATION_IN_PROGRESS` (init while rotating) or
 * `ROTATION_PHASE_INVALID` (any other move the table above does not allow).
 */
export function checkPhaseChange(type: CaType, from: RotationPhase, to: RotationPhase): void {
  if (to === "init" && from !== "standby") {
    throw new KeyboundError(
      "ROTATION_IN_PROGRESS",
      `the ${type} CA is already rotating (phase ${from}): finish it (--phase ` +
        `${NEXT_PHASES[from][0]}) or roll it back (--phase rollback) first`,
    );
  }
  if (!NEXT_PHASES[from].includes(to)) {
    const next = NEXT_PHASES[from].join(" or ");
    throw new KeyboundError(
      "ROTATION_PHASE_INVALID",
      from === to
        ? `the ${type} CA is already in phase ${to} (next: ${next})`
        : `the ${type} CA cannot move from ${from} to ${to} (next: ${next})`,
    );
  }
}

function swap(r: StoredCa): { active: StoredKeySet; additional: StoredKeySet } {
  if (!r.additional) throw new KeyboundError("INTERNAL", `${r.type} CA has no additional keys`);
  return { active: r.additional, additional: r.active };
}

/** The record after `change`; throws as {@linkcode checkPhaseChange} does. */
export async function applyPhaseChange(r: StoredCa, change: PhaseChange): Promise<StoredCa> {
  const from = r.rotation.phase;
  const to = change.phase;
  checkPhaseChange(r.type, from, to);
  const now = change.now;
  const iso = now.toISOString();
  const live = r.cross_signed.filter((c) => Date.parse(c.until) > now.getTime());
  switch (to) {
    case "init": {
      const mode = change.mode ?? "manual";
      const grace = change.gracePeriodS ?? DEFAULT_GRACE_PERIOD_S;
      const at = (f: number) =>
        new Date(now.getTime() + Math.round(grace * 1000 * f)).toISOString();
      return {
        ...r,
        additional: await newKeySet(r.type, change.clusterName, now),
        cross_signed: live,
        rotation: {
          phase: "init",
          mode,
          id: randomUuid(),
          started: iso,
          grace_period_s: grace,
          phase_changed_at: iso,
          ...(mode === "auto"
            ? { schedule: { update_clients: at(1 / 3), update_servers: at(2 / 3), standby: at(1) } }
            : {}),
          ...(r.rotation.last_rotated ? { last_rotated: r.rotation.last_rotated } : {}),
        },
      };
    }
    case "update_clients": {
      const next = { ...r, ...swap(r), cross_signed: live };
      if (r.type === "host" && r.active.tls && r.additional?.tls) {
        next.cross_signed = [...live, {
          cert_pem: await crossSign(r.active.tls, r.additional.tls, "host certificate authority"),
          // Renewed at standby; until then it lives as long as the rotation may.
          until: new Date(now.getTime() + CROSS_SIGNED_RETENTION_MS + 365 * 24 * 3600 * 1000)
            .toISOString(),
          rotation_id: r.rotation.id ?? "",
        }];
      }
      return { ...next, rotation: withPhase(r, to, iso, change.mode) };
    }
    case "update_servers":
      return { ...r, cross_signed: live, rotation: withPhase(r, to, iso, change.mode) };
    case "rollback": {
      const keys = from === "init" ? {} : swap(r);
      return {
        ...r,
        ...keys,
        cross_signed: live.filter((c) => c.rotation_id !== r.rotation.id),
        rotation: withPhase(r, to, iso, "manual"),
      };
    }
    case "standby": {
      const old = r.additional;
      const dropped = old
        ? [{
          ...(old.tls ? { tls_cert_pem: old.tls.cert_pem } : {}),
          ...(old.tls_ed25519 ? { tls_ed25519_cert_pem: old.tls_ed25519.cert_pem } : {}),
          ...(old.ssh ? { ssh_public_key: await sshPublicOf(old.ssh.key_pkcs8) } : {}),
          ...(old.jwt ? await jwtPublicOf(old.jwt.key_pkcs8) : {}),
          dropped_at: iso,
        }, ...r.dropped].slice(0, MAX_DROPPED_KEYS)
        : r.dropped;
      const completed = from === "update_servers";
      const { additional: _dropped, ...rest } = r;
      return {
        ...rest,
        dropped,
        cross_signed: live.map((c) =>
          c.rotation_id === r.rotation.id
            ? { ...c, until: new Date(now.getTime() + CROSS_SIGNED_RETENTION_MS).toISOString() }
            : c
        ),
        rotation: {
          phase: "standby",
          ...(r.rotation.id ? { id: r.rotation.id } : {}),
          phase_changed_at: iso,
          ...(completed
            ? { last_rotated: iso }
            : r.rotation.last_rotated
            ? { last_rotated: r.rotation.last_rotated }
            : {}),
        },
      };
    }
  }
}

function withPhase(
  r: StoredCa,
  phase: RotationPhase,
  iso: string,
  mode: RotationMode | undefined,
): StoredCa["rotation"] {
  const next = { ...r.rotation, phase, phase_changed_at: iso, ...(mode ? { mode } : {}) };
  // A manual step takes an automatic rotation over: its schedule no longer applies.
  return next.mode === "manual" ? withoutSchedule(next) : next;
}

function withoutSchedule(r: StoredCa["rotation"]): StoredCa["rotation"] {
  const { schedule: _schedule, ...rest } = r;
  return rest;
}

async function sshPublicOf(pkcs8: string): Promise<string> {
  return await toAuthorizedKey((await importPkcs8(fromBase64(pkcs8))).publicKey);
}

async function jwtPublicOf(pkcs8: string): Promise<{ jwt_kid: string; jwt_spki: string }> {
  const { publicKey } = await importPkcs8(fromBase64(pkcs8));
  return { jwt_kid: await keyId(publicKey), jwt_spki: toBase64(await exportSpki(publicKey)) };
}

/**
 * The phase an automatic rotation is due to enter at `now`, or null. In
 * manual mode (or standby) nothing is ever due.
 */
export function duePhase(r: StoredCa, now: Date): RotationPhase | null {
  const s = r.rotation.schedule;
  if (r.rotation.mode !== "auto" || !s) return null;
  const t = now.getTime();
  switch (r.rotation.phase) {
    case "init":
      return t >= Date.parse(s.update_clients) ? "update_clients" : null;
    case "update_clients":
      return t >= Date.parse(s.update_servers) ? "update_servers" : null;
    case "update_servers":
      return t >= Date.parse(s.standby) ? "standby" : null;
    default:
      return null;
  }
}
