/**
 * tctl's flags, in the shape `node:util` `parseArgs` takes (a plain object,
 * so this module stays runtime-agnostic), and which flags each command accepts.
 *
 * @module
 */

/** One flag of {@linkcode TCTL_OPTIONS}. */
export interface FlagSpec {
  /** Value kind. */
  type: "string" | "boolean";
  /** One-letter alias. */
  short?: string;
  /** Repeatable. */
  multiple?: boolean;
}

/** Every tctl flag; global ones work before or after the command. */
export const TCTL_OPTIONS = {
  "auth-server": { type: "string" },
  identity: { type: "string", short: "i" },
  "data-dir": { type: "string" },
  insecure: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  format: { type: "string" },
  force: { type: "boolean", short: "f" },
  type: { type: "string" },
  limit: { type: "string" },
  roles: { type: "string" },
  logins: { type: "string", multiple: true },
  "max-session-ttl": { type: "string" },
  "initial-public-key": { type: "string" },
  "registration-secret": { type: "string" },
  "recovery-limit": { type: "string" },
  "recovery-mode": { type: "string" },
  "join-token": { type: "string" },
  "bot-instance-id": { type: "string" },
  user: { type: "string" },
  message: { type: "string" },
  expires: { type: "string" },
  ttl: { type: "string" },
} as const satisfies Record<string, FlagSpec>;

/** A flag name. */
export type FlagName = keyof typeof TCTL_OPTIONS;

/** Parsed flag values, as `parseArgs` returns them. */
export type TctlFlags = { [K in FlagName]?: string | boolean | string[] };

/** Flags every command accepts (connection and help). */
export const GLOBAL_FLAGS: readonly FlagName[] = [
  "auth-server",
  "identity",
  "data-dir",
  "insecure",
  "help",
];

/** A string flag's value, or undefined. */
export function stringFlag(flags: TctlFlags, name: FlagName): string | undefined {
  const v = flags[name];
  return typeof v === "string" ? v : undefined;
}

/** A boolean flag's value. */
export function booleanFlag(flags: TctlFlags, name: FlagName): boolean {
  return flags[name] === true;
}

/** A repeatable (and comma-separated) flag's values. */
export function listFlag(flags: TctlFlags, name: FlagName): string[] {
  const v = flags[name];
  const raw = Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  return raw.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s !== "");
}
