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
  "join-uri": {
    type: "string",
    value: "URI",
    help: "tbot+proxy+bound-keypair://TOKEN[:SECRET]@host:port, or /path of a file holding it " +
      "(or TBOT_JOIN_URI)",
  },
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
  destination: {
    type: "string",
    value: "DIR",
    help: "output directory: a path or file:///path (required by the output modes)",
  },
  principals: {
    type: "string",
    multiple: true,
    value: "H[,H…]",
    help: "host names and addresses of the SSH host certificate (ssh-host)",
  },
  "name-selector": {
    type: "string",
    value: "NAME",
    help: "the workload_identity resource to issue (workload-identity-*)",
  },
  audience: {
    type: "string",
    multiple: true,
    value: "AUD",
    help: "audience of the JWT-SVID (workload-identity-jwt)",
  },
  "reader-user": {
    type: "string",
    multiple: true,
    value: "USER",
    help: "a user who may read the output's files (POSIX ACLs)",
  },
  "reader-group": {
    type: "string",
    multiple: true,
    value: "GROUP",
    help: "a group that may read the output's files (ACLs, or 0640 without them)",
  },
  "on-renew-exec": {
    type: "string",
    multiple: true,
    value: "WORD",
    help: "run a program after each write: the program, then each argument, one flag each " +
      "(--on-renew-exec=-x for a word starting with -)",
  },
  "on-renew-signal": {
    type: "string",
    value: "SIG",
    help: "after each write, send SIG (HUP, USR1, USR2, TERM, INT, QUIT) to --on-renew-pid-file",
  },
  "on-renew-pid-file": {
    type: "string",
    value: "FILE",
    help: "file holding the process id --on-renew-signal goes to",
  },
  "on-renew-timeout": {
    type: "string",
    value: "D",
    help: "how long the on-renew hook may take (default 10s)",
  },
  output: {
    type: "string",
    short: "o",
    value: "FILE",
    help: "write the configuration to FILE (0600) instead of standard output",
  },
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
    "join-uri",
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

/** The flags of the CLI-only output modes, besides {@linkcode START}'s. */
const MODE_FLAGS = [
  "destination",
  "principals",
  "name-selector",
  "audience",
  "reader-user",
  "reader-group",
  "on-renew-exec",
  "on-renew-signal",
  "on-renew-pid-file",
  "on-renew-timeout",
] as const;

/** `tbot start MODE` / `tbot configure MODE`: one output, built from flags (Teleport's shapes). */
export const OUTPUT_MODES = {
  identity: "an identity output (certificates and key for tsh, tctl, OpenSSH)",
  "ssh-host": "an SSH host key and certificate for sshd (--principals)",
  "workload-identity-x509": "an X.509 SVID (--name-selector)",
  "workload-identity-jwt": "a JWT-SVID (--name-selector, --audience)",
} as const;
/** A CLI-only output mode. */
export type OutputMode = keyof typeof OUTPUT_MODES;

const modeCommands = (Object.keys(OUTPUT_MODES) as OutputMode[]).flatMap((mode) =>
  [
    {
      path: ["start", mode],
      args: "",
      arity: [0, 0],
      summary: `run the bot with ${OUTPUT_MODES[mode]}`,
      flags: [...START.flags, ...MODE_FLAGS],
    },
    {
      path: ["configure", mode],
      args: "",
      arity: [0, 0],
      summary: `print the tbot.yaml of \`tbot start ${mode}\` with the same flags`,
      flags: [...START.flags, ...MODE_FLAGS, "output"],
    },
  ] as const
);

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
    ...modeCommands,
    {
      path: ["keypair", "create"],
      args: "",
      arity: [0, 0],
      summary: "make a bound keypair to preregister",
      flags: [
        "storage",
        "proxy-server",
        "auth-server",
        "join-uri",
        "ca-pin",
        "format",
        "overwrite",
        "static",
        "static-key-path",
      ],
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
  footer:
    "Environment: TELEPORT_PROXY, TELEPORT_AUTH_SERVER, TELEPORT_BOT_TOKEN and TBOT_JOIN_URI\n" +
    "stand in for --proxy-server, --auth-server, --token and --join-uri; TBOT_CONFIG_PATH names\n" +
    "a config file and TBOT_CONFIG holds one (base64). Flags win. See docs/tbot.md.",
} as const satisfies ProgramSpec<typeof FLAGS>;

/** Every tbot flag value (each command reads the ones it takes). */
export type TbotFlags = FlagValues<typeof FLAGS>;
