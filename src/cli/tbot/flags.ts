/**
 * tbot's command line as one table: every flag once, and which command
 * takes it. Parsing (src/cli/flags), help, and the flag values each command
 * receives ({@linkcode TbotFlags}) all come from here.
 *
 * @module
 */
import type { FlagValues, ProgramSpec } from "../flags/mod.ts";

const FLAGS = {
  config: {
    type: "string",
    short: "c",
    value: "FILE",
    help: "config file (or TBOT_CONFIG_PATH)",
  },
  debug: { type: "boolean", short: "d", help: "debug logging (or TBOT_DEBUG=1)" },
  "log-format": { type: "string", value: "F", help: "text (default) or json" },
  insecure: {
    type: "boolean",
    help: "do not verify the auth service's certificate (dangerous)",
  },
  help: { type: "boolean", short: "h", help: "show help" },
  oneshot: { type: "boolean", help: "join (or renew) once, write the outputs and exit" },
  "diag-addr": { type: "string", value: "ADDR", help: "diagnostics listener (host:port)" },
  "pid-file": { type: "string", value: "FILE", help: "write the process id to FILE" },
  "proxy-server": { type: "string", value: "ADDR", help: "auth service address (host:port)" },
  "auth-server": {
    type: "string",
    short: "a",
    value: "ADDR",
    help: "auth service address (host:port; same as --proxy-server)",
  },
  token: { type: "string", value: "NAME", help: "join token name" },
  "join-method": { type: "string", value: "M", help: "join method (bound_keypair)" },
  "ca-pin": {
    type: "string",
    multiple: true,
    value: "PIN",
    help: "CA pin sha256:HEX that the auth service must present",
  },
  storage: {
    type: "string",
    value: "DIR",
    help: "bot storage: a path, file:///path or memory://",
  },
  "registration-secret": {
    type: "string",
    value: "S",
    help: "registration secret of the token",
  },
  "registration-secret-path": {
    type: "string",
    value: "FILE",
    help: "file holding the registration secret",
  },
  "static-key-path": {
    type: "string",
    value: "FILE",
    help: "a static private key (PKCS#8 PEM) instead of a generated one",
  },
  "certificate-ttl": { type: "string", value: "D", help: "certificate lifetime, e.g. 1h" },
  "renewal-interval": { type: "string", value: "D", help: "time between renewals, e.g. 20m" },
  format: { type: "string", value: "F", help: "output format: text or json" },
  overwrite: { type: "boolean", help: "replace an existing key" },
  static: { type: "boolean", help: "a static key kept in a file (with --static-key-path)" },
  write: { type: "boolean", help: "write the unit file instead of printing it" },
  force: { type: "boolean", help: "replace a unit file with different content" },
  name: { type: "string", value: "NAME", help: "unit name (default tbot)" },
  user: { type: "string", value: "USER", help: "user the unit runs as (default teleport)" },
  group: { type: "string", value: "GROUP", help: "group the unit runs as (default teleport)" },
  "systemd-directory": {
    type: "string",
    value: "DIR",
    help: "where to write the unit (default /etc/systemd/system)",
  },
  "anonymous-telemetry": {
    type: "boolean",
    help: "set TELEPORT_ANONYMOUS_TELEMETRY=1 in the unit",
  },
  service: { type: "string", value: "NAME", help: "wait for this service only" },
  timeout: { type: "string", value: "D", help: "how long to wait (default 1m)" },
} as const;

const START = {
  path: ["start"],
  args: "",
  arity: [0, 0],
  summary: "run the bot (daemon by default; --oneshot to join once and exit)",
  flags: [
    "oneshot",
    "diag-addr",
    "pid-file",
    "proxy-server",
    "auth-server",
    "token",
    "join-method",
    "ca-pin",
    "storage",
    "registration-secret",
    "registration-secret-path",
    "static-key-path",
    "certificate-ttl",
    "renewal-interval",
  ],
} as const;

/** tbot's flags and commands. */
export const TBOT = {
  name: "tbot",
  summary: "Keybound's tbot: joins a Keybound auth service with a bound keypair and keeps\n" +
    "the bot's certificates fresh.",
  flags: FLAGS,
  global: ["config", "debug", "log-format", "insecure", "help"],
  commands: [
    START,
    // Teleport's v1 spelling of `start`.
    { ...START, path: ["start", "legacy"], hidden: true },
    {
      path: ["keypair", "create"],
      args: "",
      arity: [0, 0],
      summary: "make a bound keypair to preregister",
      flags: ["storage", "proxy-server", "format", "overwrite", "static", "static-key-path"],
    },
    {
      path: ["install", "systemd"],
      args: "",
      arity: [0, 0],
      summary: "print or write a systemd unit that runs tbot with -c FILE",
      flags: [
        "write",
        "force",
        "name",
        "user",
        "group",
        "systemd-directory",
        "anonymous-telemetry",
        "pid-file",
      ],
    },
    {
      path: ["wait"],
      args: "",
      arity: [0, 0],
      summary: "wait until a running tbot is ready",
      flags: ["diag-addr", "service", "timeout"],
    },
    { path: ["version"], args: "", arity: [0, 0], summary: "print the version", flags: [] },
  ],
  footer: "See docs/tbot.md.",
} as const satisfies ProgramSpec<typeof FLAGS>;

/** Every tbot flag value (each command reads the ones it takes). */
export type TbotFlags = FlagValues<typeof FLAGS>;
