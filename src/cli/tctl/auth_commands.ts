/**
 * Certificate authority commands: `tctl auth rotate`, `tctl auth export`
 * and `tctl status` (each CA's rotation phase, keys and the pin a new bot
 * uses). See docs/operations.md for when and how to rotate.
 *
 * @module
 */
import { knownHostsText } from "../../agent/outputs/ssh_config.ts";
import {
  CA_TYPES,
  type CaExport,
  type CaStatus,
  type CaTypeName,
  ROTATION_PHASES,
  type RotationPhase,
} from "../../protocol/ca_rotation.ts";
import { parseDuration } from "../../util/duration.ts";
import { escapeLogText } from "../../util/log.ts";
import { type CommandSpec, outputFormat, UsageError } from "./command.ts";
import { formatTable } from "./table.ts";

/** Teleport's names of the X.509 halves, accepted by `auth export`. */
const EXPORT_ALIASES: Record<string, { type: CaTypeName; format: ExportFormat }> = {
  "tls-host": { type: "host", format: "pem" },
  "tls-user": { type: "user", format: "pem" },
};

/**
 * What `auth export` prints. `ed25519-pem`: the user CA's Ed25519 X.509
 * certificates (they verify the join certificates of Ed25519 bots), kept
 * apart from `pem`, which third-party TLS stacks read.
 */
type ExportFormat = "pem" | "ed25519-pem" | "known_hosts" | "authorized_keys" | "jwks";
const EXPORT_FORMATS: readonly ExportFormat[] = [
  "pem",
  "ed25519-pem",
  "known_hosts",
  "authorized_keys",
  "jwks",
];

/** The default export format of each CA type (what its consumers read). */
const DEFAULT_EXPORT: Record<CaTypeName, ExportFormat> = {
  host: "known_hosts",
  user: "authorized_keys",
  bound_keypair: "jwks",
  jwt: "jwks",
  spiffe: "pem",
};

function caTypeFlag(value: string | undefined, command: string): CaTypeName {
  if (value === undefined) {
    throw new UsageError(`${command}: --type is required (${CA_TYPES.join(", ")})`);
  }
  if (!(CA_TYPES as readonly string[]).includes(value)) {
    throw new UsageError(
      `--type: unknown CA type "${escapeLogText(value)}" (types: ${CA_TYPES.join(", ")})`,
    );
  }
  return value as CaTypeName;
}

/** `--grace-period D` in whole seconds. */
function gracePeriodSeconds(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new UsageError(`--grace-period: invalid duration "${escapeLogText(text)}" (e.g. 30h)`);
  }
  const s = Math.round(ms / 1000);
  if (s <= 0) {
    throw new UsageError("--grace-period: must be positive (a forced rotation is not supported)");
  }
  return s;
}

/** `tctl auth rotate --type=T [--grace-period D] [--manual --phase P]`. */
export const authRotateCommand: CommandSpec = {
  path: ["auth", "rotate"],
  args: "",
  arity: [0, 0],
  summary: "rotate a certificate authority (--type T; --grace-period D, or --manual --phase P)",
  flags: ["type", "grace-period", "manual", "phase"],
  async run(ctx, _args, flags) {
    const type = caTypeFlag(flags.type, "auth rotate");
    const phaseText = flags.phase;
    if (phaseText !== undefined && !flags.manual) {
      throw new UsageError(
        "--phase needs --manual (an automatic rotation walks the phases itself)",
      );
    }
    if (phaseText !== undefined && !(ROTATION_PHASES as readonly string[]).includes(phaseText)) {
      throw new UsageError(
        `--phase: unknown phase "${escapeLogText(phaseText)}" (phases: ${
          ROTATION_PHASES.join(", ")
        })`,
      );
    }
    if (flags.manual && flags.gracePeriod !== undefined) {
      throw new UsageError("--grace-period applies to automatic rotations; drop it or --manual");
    }
    const status = await (await ctx.api()).rotateCa(type, {
      mode: flags.manual ? "manual" : "auto",
      ...(phaseText !== undefined ? { phase: phaseText as RotationPhase } : {}),
      ...(flags.gracePeriod !== undefined
        ? { grace_period_s: gracePeriodSeconds(flags.gracePeriod) }
        : {}),
    });
    ctx.out(
      `Updated the ${type} CA: phase ${status.phase}` +
        (status.mode ? ` (${status.mode})` : "") + ".\n" + nextStep(status) +
        shortPhaseWarning(flags.gracePeriod, flags.manual),
    );
  },
};

/** A bot renews every 20 min by default: a phase shorter than that drops keys under bots. */
const DEFAULT_RENEWAL_S = 20 * 60;

/**
 * A warning when each automatic phase (a third of the grace period) is shorter
 * than the default renewal interval: bots that do not renew within a phase find
 * their certificate's key dropped at standby and recover, each consuming one of
 * its token's recoveries.
 */
function shortPhaseWarning(gracePeriod: string | undefined, manual: boolean | undefined): string {
  if (manual || gracePeriod === undefined) return "";
  const phase = Math.round(gracePeriodSeconds(gracePeriod) / 3);
  if (phase >= DEFAULT_RENEWAL_S) return "";
  return `Warning: each phase lasts ${phase} s, shorter than the default bot renewal interval ` +
    "(20 min): bots that do not renew within a phase lose their certificate at standby and " +
    "recover with their bound key, consuming one recovery each.\n";
}

/** What the operator does next, in one line. */
function nextStep(s: CaStatus): string {
  const t = s.type;
  switch (s.phase) {
    case "init":
      return s.mode === "auto"
        ? `The phases follow automatically (update_clients at ${s.schedule?.update_clients}).\n`
        : `New key trusted, not signing. Export it to outside verifiers now (tctl auth export --type=${t}), then: tctl auth rotate --type=${t} --manual --phase=update_clients\n`;
    case "update_clients":
      return `New key signs; bots pick it up at their next renewal. Next: --phase=update_servers\n`;
    case "update_servers":
      return `Auth servers present certificates from the new key. Next: --phase=standby (drops the old key)\n`;
    case "rollback":
      return `Old key signs again. Next: --phase=standby (drops the new key)\n`;
    case "standby":
      return `Rotation finished; only the ${
        s.keys[0]?.tls_pin ?? s.keys[0]?.kid ?? "new"
      } key is trusted.\n`;
  }
}

/** `tctl auth export --type=T [--format pem|ed25519-pem|known_hosts|authorized_keys|jwks]`. */
export const authExportCommand: CommandSpec = {
  path: ["auth", "export"],
  args: "",
  arity: [0, 0],
  summary:
    "print a CA's trusted keys (--type T; --format pem|ed25519-pem|known_hosts|authorized_keys|jwks); signing key first",
  flags: ["type", "format"],
  async run(ctx, _args, flags) {
    const alias = flags.type === undefined ? undefined : EXPORT_ALIASES[flags.type];
    const type = alias?.type ?? caTypeFlag(flags.type, "auth export");
    const format = (flags.format ?? alias?.format ?? DEFAULT_EXPORT[type]) as ExportFormat;
    if (!EXPORT_FORMATS.includes(format)) {
      throw new UsageError(
        `--format: unknown export format "${escapeLogText(format)}" (${EXPORT_FORMATS.join(", ")})`,
      );
    }
    const ca = await (await ctx.api()).caExport(type);
    ctx.out(exportText(ca, format));
  },
};

function exportText(ca: CaExport, format: ExportFormat): string {
  const none = (what: string) => {
    throw new UsageError(
      `the ${ca.type} CA has no ${what}; try --format ${DEFAULT_EXPORT[ca.type]}`,
    );
  };
  switch (format) {
    case "pem":
      if (ca.tls_ca_certs.length === 0) none("X.509 certificate");
      return ca.tls_ca_certs.map((p) => p.trimEnd() + "\n").join("");
    case "ed25519-pem":
      if (!ca.tls_ed25519_ca_certs?.length) none("Ed25519 X.509 certificate");
      return ca.tls_ed25519_ca_certs!.map((p) => p.trimEnd() + "\n").join("");
    case "known_hosts":
      if (ca.type !== "host") none("known_hosts form (only the host CA signs host keys)");
      return knownHostsText(ca.ssh_ca_keys);
    case "authorized_keys":
      if (ca.ssh_ca_keys.length === 0) none("SSH key");
      // sshd's TrustedUserCAKeys file: one key per line.
      return ca.ssh_ca_keys.map((k) => k.trim() + "\n").join("");
    case "jwks":
      if (ca.jwks.keys.length === 0) none("JWT key");
      return JSON.stringify(ca.jwks, null, 2) + "\n";
  }
}

/** `tctl status`: cluster, version, the pin a new bot uses, and each CA's rotation state. */
export const statusCommand: CommandSpec = {
  path: ["status"],
  args: "",
  arity: [0, 0],
  summary: "show the cluster, auth service version, CA pin and each CA's rotation phase and keys",
  flags: ["format"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const s = await (await ctx.api()).status();
    if (format === "json") return ctx.out(JSON.stringify(s, null, 2) + "\n");
    // The first three lines as Teleport prints them (the seed guide shows them).
    const [cluster, version, pin] = [s.cluster_name, s.server_version, s.ca_pin].map(escapeLogText);
    ctx.out(`Cluster  ${cluster}\nVersion  ${version}\nCA pin   ${pin}\n`);
    if (!s.cas) return;
    ctx.out(
      "\n" + formatTable(
        ["CA", "Phase", "Mode", "Key", "Fingerprints"],
        s.cas.flatMap((ca) =>
          ca.keys.map((k, i) => [
            i === 0 ? ca.type : "",
            i === 0 ? ca.phase : "",
            i === 0 ? ca.mode ?? "" : "",
            k.role + (k.serves_tls ? ",serves-tls" : ""),
            [
              k.tls_pin,
              k.tls_ed25519_pin && `ed25519 ${k.tls_ed25519_pin}`,
              k.ssh_fingerprint,
              k.kid && `kid ${k.kid}`,
            ].filter(Boolean).join(" "),
          ])
        ),
      ),
    );
    for (const ca of s.cas) {
      if (ca.phase === "standby" || !ca.schedule) continue;
      ctx.out(
        `\n${escapeLogText(ca.type)}: automatic rotation; update_clients ${
          escapeLogText(ca.schedule.update_clients)
        }, update_servers ${escapeLogText(ca.schedule.update_servers)}, standby ${
          escapeLogText(ca.schedule.standby)
        }\n`,
      );
    }
  },
};
