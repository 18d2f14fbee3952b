/**
 * tctl's flags, each declared once with its help; commands name the ones
 * they take (see {@linkcode CommandSpec}). Parsed by src/cli/flags.
 *
 * @module
 */
import type { FlagValues } from "../flags/mod.ts";

/** Every tctl flag; global ones work before or after the command. */
export const TCTL_FLAGS = {
  "auth-server": {
    type: "string",
    value: "HOST:PORT",
    help: "auth service address (https unless http:// on loopback)",
  },
  identity: { type: "string", short: "i", value: "FILE", help: "admin identity file" },
  "data-dir": {
    type: "string",
    value: "DIR",
    help: "on the auth host: DIR/admin-identity and DIR/auth-server",
  },
  "ca-path": {
    type: "string",
    value: "FILE",
    help:
      "also trust the CA certificates (PEM) in FILE for the auth service: your PKI's CA when it serves --tls-cert-file (or TELEPORT_CA_PATH)",
  },
  insecure: { type: "boolean", help: "do not verify the auth service's certificate" },
  help: { type: "boolean", short: "h", help: "show help" },
  format: { type: "string", value: "F", help: "output format: text, json or yaml" },
  force: { type: "boolean", short: "f", help: "replace a resource that exists" },
  type: {
    type: "string",
    value: "T",
    help:
      "audit ls: only events of this type; tokens add: join method (bound_keypair); auth: CA type (host, user, bound_keypair, jwt, spiffe)",
  },
  "grace-period": {
    type: "string",
    value: "D",
    help: "auth rotate: length of an automatic rotation (default 30h; each phase a third)",
  },
  manual: { type: "boolean", help: "auth rotate: move one phase per command (--phase)" },
  phase: {
    type: "string",
    value: "P",
    help: "auth rotate --manual: init, update_clients, update_servers, standby or rollback",
  },
  "bot-name": { type: "string", value: "NAME", help: "the bot a new token joins as" },
  search: { type: "string", value: "S", help: "only rows containing S (any column)" },
  "add-roles": { type: "string", value: "R1,R2", help: "roles to add to the bot" },
  "set-roles": { type: "string", value: "R1,R2", help: "the bot's roles, replacing the old ones" },
  "set-traits": {
    type: "string",
    multiple: true,
    value: "K=V1,V2,K2=V",
    help: "the bot's traits, replacing the old ones (empty: none)",
  },
  limit: {
    type: "string",
    value: "N",
    help: "ls commands: at most N rows (default 100, max 1000)",
  },
  after: {
    type: "string",
    value: "CURSOR",
    help: "ls commands: the page after this cursor (printed under a page)",
  },
  roles: { type: "string", value: "R1,R2", help: "roles of the bot" },
  logins: {
    type: "string",
    multiple: true,
    value: "L1,L2",
    help: "SSH logins of the bot",
  },
  "max-session-ttl": { type: "string", value: "D", help: "longest certificate lifetime, e.g. 12h" },
  "initial-public-key": {
    type: "string",
    value: "KEY",
    help: "pre-registered public key ('ssh-ed25519 AAAA…'; no secret)",
  },
  "registration-secret": { type: "string", value: "S", help: "the registration secret to use" },
  "recovery-limit": { type: "string", value: "N", help: "recoveries allowed (default 1)" },
  "recovery-mode": {
    type: "string",
    value: "M",
    help: "standard, relaxed or insecure (default standard)",
  },
  "join-token": { type: "string", value: "NAME", help: "lock this join token" },
  "bot-instance-id": { type: "string", value: "ID", help: "lock this bot instance" },
  user: { type: "string", value: "NAME", help: "lock this user (bot-NAME for a bot)" },
  message: { type: "string", value: "TEXT", help: "why (shown to the locked-out client)" },
  expires: { type: "string", value: "TIME", help: "lock until this RFC 3339 time" },
  ttl: { type: "string", value: "D", help: "lock, token or enrollment URL lifetime, e.g. 24h" },
  "session-ttl": { type: "string", value: "D", help: "web enroll: how long the browser stays in" },
  label: { type: "string", value: "NAME", help: "web enroll: what to call the browser" },
} as const;

/** A flag name. */
export type FlagName = keyof typeof TCTL_FLAGS;

/** Parsed flag values (camelCase keys). */
export type TctlFlags = FlagValues<typeof TCTL_FLAGS>;

/** Flags every command accepts (connection and help). */
export const GLOBAL_FLAGS: readonly FlagName[] = [
  "auth-server",
  "identity",
  "data-dir",
  "ca-path",
  "insecure",
  "help",
];

/** A repeatable and comma-separated flag's values (`--logins a,b --logins c`). */
export function listValues(value: string | string[] | undefined): string[] {
  const raw = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return raw.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s !== "");
}
