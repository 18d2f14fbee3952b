/**
 * Changing a CA's rotation phase: by an admin (`POST /v1/cas/{type}/rotate`)
 * or, in automatic mode, by whichever instance first sees a phase due. Each
 * change is one compare-and-swap of the CA record (read from the backend,
 * not the cache) together with the revision record and its audit event, so
 * of several instances or operators racing, one change applies and is
 * audited once; the others re-read and are refused or find nothing due.
 *
 * @module
 */
import { BadParameterError, KeyboundError } from "../../errors.ts";
import type { JsonValue } from "../../storage/backend.ts";
import type { CaStatus, RotateRequest } from "../../protocol/ca_rotation.ts";
import { auditMutations } from "../audit.ts";
import type { CaType, ServerContext } from "../context.ts";
import { CA_REVISION_KEY, caKey } from "../keys.ts";
import { caStatus } from "./status.ts";
import { caOf, refreshCas } from "./cache.ts";
import { corruptCa } from "./material.ts";
import {
  applyPhaseChange,
  duePhase,
  MAX_GRACE_PERIOD_S,
  MIN_GRACE_PERIOD_S,
  type PhaseChange,
} from "./phases.ts";
import { CA_TYPES, parseStoredCa, type RotationPhase, type StoredCa } from "./schema.ts";

/** Attempts of a phase change's compare-and-swap before `CONFLICT`. */
const MAX_ATTEMPTS = 3;

/** Throws `BAD_PARAMETER` unless `type` names a CA type. */
export function parseCaType(type: string): CaType {
  if (!(CA_TYPES as readonly string[]).includes(type)) {
    throw new BadParameterError(
      `type: unknown CA type "${type}" (types: ${CA_TYPES.join(", ")})`,
      { details: { path: "type" } },
    );
  }
  return type as CaType;
}

async function readStored(ctx: ServerContext, type: CaType) {
  const entry = await ctx.backend.get(caKey(type));
  if (!entry) throw corruptCa(`${type} certificate authority (missing)`);
  const parsed = parseStoredCa(entry.value);
  if (!parsed.success) throw corruptCa(`${type} certificate authority`, parsed.error);
  return { stored: parsed.data, version: entry.version };
}

/** Who changed a phase: an admin, or the automatic schedule. */
export interface RotationActor {
  /** User name, or `auth` for an automatic change. */
  user: string;
  /** Peer address, when known. */
  remoteAddr?: string;
}

async function commitChange(
  ctx: ServerContext,
  type: CaType,
  read: { stored: StoredCa; version: string },
  next: StoredCa,
  actor: RotationActor,
): Promise<boolean> {
  const r = await ctx.backend.commit({
    checks: [{ key: caKey(type), version: read.version }],
    mutations: [
      { type: "set", key: caKey(type), value: next as unknown as JsonValue },
      {
        type: "set",
        key: CA_REVISION_KEY,
        value: { type, phase: next.rotation.phase, changed_at: ctx.now().toISOString() },
      },
      ...auditMutations(ctx, {
        type: "ca.rotation",
        status: { success: true },
        ...(actor.remoteAddr ? { connection: { remote_addr: actor.remoteAddr } } : {}),
        user: actor.user,
        ca_type: type,
        phase: next.rotation.phase,
        previous_phase: read.stored.rotation.phase,
        mode: next.rotation.mode ?? null,
        rotation_id: next.rotation.id ?? null,
      }),
    ],
  });
  return r.ok;
}

/** Checks a rotate request's grace period; returns it in seconds. */
function gracePeriodOf(req: RotateRequest): number | undefined {
  const g = req.grace_period_s;
  if (g === undefined) return undefined;
  if (g < MIN_GRACE_PERIOD_S || g > MAX_GRACE_PERIOD_S) {
    throw new BadParameterError(
      `grace_period_s: must be from ${MIN_GRACE_PERIOD_S} s to ${MAX_GRACE_PERIOD_S / 86400} days`,
      { details: { path: "grace_period_s" } },
    );
  }
  return g;
}

/**
 * Applies an admin's rotate request: `auto` starts a rotation (init now,
 * then the schedule), `manual` moves to `phase` (default `init`). Returns the
 * CA's status after the change. Bad requests change nothing.
 */
export async function rotateCa(
  ctx: ServerContext,
  type: CaType,
  req: RotateRequest,
  actor: RotationActor,
): Promise<CaStatus> {
  const gracePeriodS = gracePeriodOf(req);
  const phase: RotationPhase = req.phase ?? "init";
  if (req.mode === "auto" && phase !== "init") {
    throw new BadParameterError("phase: an automatic rotation starts at init (use manual mode)", {
      details: { path: "phase" },
    });
  }
  if (req.mode === "manual" && gracePeriodS !== undefined) {
    throw new BadParameterError(
      "grace_period_s: applies to automatic rotations only (drop --manual or the grace period)",
      { details: { path: "grace_period_s" } },
    );
  }
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const read = await readStored(ctx, type);
    const change: PhaseChange = {
      phase,
      now: ctx.now(),
      clusterName: ctx.clusterName,
      // Every manual request is manual mode from then on (a takeover of an automatic rotation).
      mode: req.mode,
      ...(gracePeriodS !== undefined ? { gracePeriodS } : {}),
    };
    const next = await applyPhaseChange(read.stored, change);
    if (await commitChange(ctx, type, read, next, actor)) {
      ctx.log.info("certificate authority rotation phase changed", {
        type,
        phase,
        mode: next.rotation.mode ?? "",
        user: actor.user,
      });
      await refreshCas(ctx, 0);
      return await caStatus(caOf(ctx, type));
    }
  }
  throw new KeyboundError("CONFLICT", `the ${type} CA changed meanwhile; try again`);
}

/**
 * Applies every automatic phase change that is due. Any instance may call it
 * (the adapters do, on a jittered timer); the compare-and-swap lets one
 * change win. Returns the changes this call applied.
 */
export async function advanceDueRotations(
  ctx: ServerContext,
): Promise<{ type: CaType; phase: RotationPhase }[]> {
  await refreshCas(ctx);
  const applied: { type: CaType; phase: RotationPhase }[] = [];
  for (const type of CA_TYPES) {
    const cached = caOf(ctx, type);
    if (cached.rotation.mode !== "auto") continue;
    const read = await readStored(ctx, type);
    const phase = duePhase(read.stored, ctx.now());
    if (!phase) continue;
    const next = await applyPhaseChange(read.stored, {
      phase,
      now: ctx.now(),
      clusterName: ctx.clusterName,
    });
    if (await commitChange(ctx, type, read, next, { user: "auth" })) {
      ctx.log.info("certificate authority rotation phase changed", {
        type,
        phase,
        mode: "auto",
      });
      applied.push({ type, phase });
    }
  }
  if (applied.length > 0) await refreshCas(ctx, 0);
  return applied;
}
