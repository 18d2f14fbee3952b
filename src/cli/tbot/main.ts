/**
 * The `tbot` command line: flag definitions, dispatch to the commands, and
 * error reporting. The argument parser is injected (`node:util` `parseArgs`
 * on Deno) so this module stays runtime-agnostic.
 *
 * @module
 */
import { TBOT_VERSION } from "../../agent/version.ts";
import { ConfigError, KeyboundError } from "../../errors.ts";
import { createLogger } from "../../util/log.ts";
import { logFormatOf } from "./log_format.ts";
import type { TbotPlatform } from "./platform.ts";
import type { StartSeams } from "./start.ts";

/** One flag, in the shape `parseArgs` takes. */
export interface FlagSpec {
  /** Value kind. */
  type: "string" | "boolean";
  /** One-letter alias. */
  short?: string;
  /** Repeatable. */
  multiple?: boolean;
}

/** The parser `runTbot` needs (`parseArgs` from `node:util` fits). */
export type ArgParser = (config: {
  args: string[];
  options: Record<string, FlagSpec>;
  allowPositionals: true;
  strict: true;
}) => {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
};

const GLOBAL: Record<string, FlagSpec> = {
  config: { type: "string", short: "c" },
  debug: { type: "boolean", short: "d" },
  "log-format": { type: "string" },
  insecure: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

const COMMANDS: Record<string, Record<string, FlagSpec>> = {
  start: {
    oneshot: { type: "boolean" },
    "diag-addr": { type: "string" },
    "pid-file": { type: "string" },
    "proxy-server": { type: "string" },
    "auth-server": { type: "string", short: "a" },
    token: { type: "string" },
    "join-method": { type: "string" },
    "ca-pin": { type: "string", multiple: true },
    storage: { type: "string" },
    "registration-secret": { type: "string" },
    "registration-secret-path": { type: "string" },
    "static-key-path": { type: "string" },
    "certificate-ttl": { type: "string" },
    "renewal-interval": { type: "string" },
  },
  "keypair create": {
    storage: { type: "string" },
    "proxy-server": { type: "string" },
    format: { type: "string" },
    overwrite: { type: "boolean" },
    static: { type: "boolean" },
    "static-key-path": { type: "string" },
  },
  "install systemd": {
    write: { type: "boolean" },
    force: { type: "boolean" },
    name: { type: "string" },
    user: { type: "string" },
    group: { type: "string" },
    "systemd-directory": { type: "string" },
    "anonymous-telemetry": { type: "boolean" },
    "pid-file": { type: "string" },
  },
  wait: {
    "diag-addr": { type: "string" },
    service: { type: "string" },
    timeout: { type: "string" },
  },
  version: {},
};

/** Usage text. */
export const USAGE = `Usage: tbot COMMAND [flags]

Keybound's tbot: joins a Keybound auth service with a bound keypair and keeps
the bot's certificates fresh.

Commands:
  start [legacy]     run the bot (daemon by default; --oneshot to join once and exit)
  keypair create     make a bound keypair to preregister (--storage DIR --proxy-server ADDR
                     [--format text|json] [--overwrite] [--static] [--static-key-path FILE])
  install systemd    print or write a systemd unit (-c FILE [--write] [--force] [--name tbot]
                     [--user teleport] [--group teleport] [--systemd-directory DIR]
                     [--anonymous-telemetry] [--pid-file FILE])
  wait               wait until a running tbot is ready (--diag-addr ADDR [--service NAME]
                     [--timeout 1m])
  version            print the version

Global flags:
  -c, --config FILE  config file (or TBOT_CONFIG_PATH)
  -d, --debug        debug logging
  --log-format F     text (default) or json
  --insecure         do not verify the auth service's certificate (dangerous)

start flags (override the file):
  --oneshot, --diag-addr ADDR, --pid-file FILE, --proxy-server ADDR, -a/--auth-server ADDR,
  --token NAME, --join-method bound_keypair, --ca-pin PIN (repeatable), --storage DIR,
  --registration-secret S, --registration-secret-path FILE, --static-key-path FILE,
  --certificate-ttl D, --renewal-interval D

See docs/tbot.md.
`;

/** Splits argv into the command name and its flags; throws `ConfigError` on unknown flags. */
function parse(argv: string[], parser: ArgParser) {
  const all: Record<string, FlagSpec> = { ...GLOBAL };
  for (const flags of Object.values(COMMANDS)) {
    for (const [k, v] of Object.entries(flags)) {
      // `-a` is only for start; the union keeps the first definition of each name.
      all[k] ??= v;
    }
  }
  let parsed;
  try {
    parsed = parser({ args: argv, options: all, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /'([^']+)'/.exec(msg)?.[1];
    throw new ConfigError(
      (e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag
        ? `unknown flag ${flag} (see tbot --help)`
        : msg.split(". ")[0],
    );
  }
  const pos = parsed.positionals;
  let command: string | undefined;
  let rest: string[] = [];
  if (pos[0] === "start") {
    command = "start";
    rest = pos.slice(pos[1] === "legacy" ? 2 : 1);
  } else if (pos.length >= 2 && `${pos[0]} ${pos[1]}` in COMMANDS) {
    command = `${pos[0]} ${pos[1]}`;
    rest = pos.slice(2);
  } else if (pos[0] in COMMANDS) {
    command = pos[0];
    rest = pos.slice(1);
  }
  if (command && rest.length > 0) {
    throw new ConfigError(`unexpected argument "${rest[0]}" for "tbot ${command}"`);
  }
  if (command) {
    const allowed = { ...GLOBAL, ...COMMANDS[command] };
    for (const k of Object.keys(parsed.values)) {
      if (!(k in allowed)) throw new ConfigError(`flag --${k} does not apply to "tbot ${command}"`);
    }
  }
  const v = parsed.values;
  const str = (k: string) => v[k] as string | undefined;
  const bool = (k: string) => v[k] as boolean | undefined;
  return {
    command,
    positionals: pos,
    str,
    bool,
    list: (k: string) => v[k] as string[] | undefined,
  };
}

/**
 * Starts a throwaway ECDSA P-256 key generation. The runtime's first P-256
 * operation pays a one-time setup of ~40 ms; started here, it runs off the
 * main thread while the agent's modules load, instead of delaying the join's
 * certificate key.
 */
function warmUpEcdsa(): void {
  crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
    .catch(() => {});
}

/**
 * Runs `tbot` with `argv` (without the program name). Returns the exit code:
 * 0 success, 1 failure, 2 bad usage.
 */
export async function runTbot(
  argv: string[],
  platform: TbotPlatform,
  parser: ArgParser,
  seams: StartSeams = {},
): Promise<number> {
  let p;
  try {
    p = parse(argv, parser);
  } catch (e) {
    platform.stderr(`tbot: ${(e as Error).message}`);
    return 2;
  }
  if (p.bool("help") || p.positionals[0] === "help" || p.positionals.length === 0) {
    platform.stdout(USAGE);
    return p.positionals.length === 0 && !p.bool("help") ? 2 : 0;
  }
  if (!p.command) {
    platform.stderr(`tbot: unknown command "${p.positionals.join(" ")}" (see tbot --help)`);
    return 2;
  }
  const debug = !!p.bool("debug") || /^(1|true|yes)$/i.test(platform.env("TBOT_DEBUG") ?? "");
  // Each command's module is loaded only when it runs, so a oneshot start
  // (and `tbot version`) does not pay for the others' imports.
  if (p.command === "start") {
    warmUpEcdsa();
    const { runStart } = await import("./start.ts");
    return runStart(
      {
        config: p.str("config"),
        oneshot: p.bool("oneshot"),
        diagAddr: p.str("diag-addr"),
        debug,
        logFormat: p.str("log-format"),
        insecure: p.bool("insecure"),
        pidFile: p.str("pid-file"),
        proxyServer: p.str("proxy-server"),
        authServer: p.str("auth-server"),
        token: p.str("token"),
        joinMethod: p.str("join-method"),
        caPin: p.list("ca-pin"),
        storage: p.str("storage"),
        registrationSecret: p.str("registration-secret"),
        registrationSecretPath: p.str("registration-secret-path"),
        staticKeyPath: p.str("static-key-path"),
        certificateTtl: p.str("certificate-ttl"),
        renewalInterval: p.str("renewal-interval"),
      },
      platform,
      seams,
    );
  }
  let log;
  try {
    log = createLogger({
      format: logFormatOf(p.str("log-format")),
      debug,
      component: "tbot",
      write: platform.stderr,
    });
  } catch (e) {
    platform.stderr(`tbot: ${(e as Error).message}`);
    return 2;
  }
  try {
    switch (p.command) {
      case "keypair create": {
        const { runKeypairCreate } = await import("./keypair_create.ts");
        return await runKeypairCreate(
          {
            storage: p.str("storage"),
            proxyServer: p.str("proxy-server"),
            format: p.str("format"),
            overwrite: p.bool("overwrite"),
            static: p.bool("static"),
            staticKeyPath: p.str("static-key-path"),
            insecure: p.bool("insecure"),
          },
          platform,
          log,
        );
      }
      case "install systemd": {
        const { runInstallSystemd } = await import("./install_systemd.ts");
        return await runInstallSystemd(
          {
            config: p.str("config"),
            write: p.bool("write"),
            force: p.bool("force"),
            name: p.str("name"),
            user: p.str("user"),
            group: p.str("group"),
            systemdDirectory: p.str("systemd-directory"),
            anonymousTelemetry: p.bool("anonymous-telemetry"),
            pidFile: p.str("pid-file"),
          },
          platform,
          log,
        );
      }
      case "wait": {
        const [{ runWait }, { systemClock }] = await Promise.all([
          import("./wait.ts"),
          import("../../agent/clock.ts"),
        ]);
        await runWait({
          diagAddr: p.str("diag-addr"),
          service: p.str("service"),
          timeout: p.str("timeout"),
        }, seams.clock ?? systemClock);
        return 0;
      }
      case "version":
        platform.stdout(`tbot v${TBOT_VERSION} (Keybound)\n`);
        return 0;
    }
  } catch (e) {
    log.error(e instanceof KeyboundError ? e.message : (e as Error).message);
    return e instanceof ConfigError ? 2 : 1;
  }
  return 2;
}
