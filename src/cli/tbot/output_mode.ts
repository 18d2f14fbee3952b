/**
 * The CLI-only forms `tbot start MODE` and `tbot configure MODE` (Teleport's
 * shapes): the one output a mode names, built from flags and checked by the
 * config schema's own {@linkcode ServiceConfig}; and the environment
 * variables that stand in for flags, as in Teleport.
 *
 * @module
 */
import { ServiceConfig } from "../../agent/config/schema.ts";
import { fieldIssue } from "../../util/zod_error.ts";
import { flagValue, UsageError } from "../flags/mod.ts";
import { parseJoinUri } from "../../agent/config/join_uri.ts";
import type { OutputMode, TbotFlags } from "./flags.ts";
import type { TbotPlatform } from "./platform.ts";
import { checkFileAccess } from "./file_access.ts";
import type { Logger } from "../../util/log.ts";

/** Which flag sets each field of a mode's output (most specific path first), for errors. */
const FLAG_OF_FIELD: Record<string, string> = {
  destination: "--destination",
  principals: "--principals",
  selector: "--name-selector",
  audiences: "--audience",
  credential_ttl: "--certificate-ttl",
  renewal_interval: "--renewal-interval",
  on_renew: "--on-renew-exec",
  "on_renew.exec": "--on-renew-exec",
  "on_renew.signal": "--on-renew-signal",
  "on_renew.pid_file": "--on-renew-pid-file",
  "on_renew.timeout": "--on-renew-timeout",
};

/** `--reader-user U --reader-group G` → `[{user: U}, {group: G}]`, or nothing. */
function readersOf(f: TbotFlags): Record<string, string>[] | undefined {
  const readers = [
    ...(f.readerUser ?? []).map((user) => ({ user })),
    ...(f.readerGroup ?? []).map((group) => ({ group })),
  ];
  return readers.length > 0 ? readers : undefined;
}

/** The `on_renew` of the `--on-renew-*` flags, or nothing; one form only. */
function onRenewOf(f: TbotFlags): Record<string, unknown> | undefined {
  const timeout = f.onRenewTimeout === undefined ? {} : { timeout: f.onRenewTimeout };
  if (f.onRenewExec !== undefined) {
    for (const flag of ["--on-renew-signal", "--on-renew-pid-file"] as const) {
      if ((flag === "--on-renew-signal" ? f.onRenewSignal : f.onRenewPidFile) !== undefined) {
        throw new UsageError(`${flag}: not together with --on-renew-exec (one hook per output)`);
      }
    }
    return { exec: f.onRenewExec, ...timeout };
  }
  if (f.onRenewSignal !== undefined || f.onRenewPidFile !== undefined) {
    if (f.onRenewSignal === undefined) {
      throw new UsageError("--on-renew-signal: required with --on-renew-pid-file");
    }
    if (f.onRenewPidFile === undefined) {
      throw new UsageError("--on-renew-pid-file: required with --on-renew-signal");
    }
    return { signal: f.onRenewSignal, pid_file: f.onRenewPidFile, ...timeout };
  }
  if (f.onRenewTimeout !== undefined) {
    throw new UsageError("--on-renew-timeout: needs --on-renew-exec or --on-renew-signal");
  }
  return undefined;
}

/** `--destination`: a path or `file:///path` (outputs write to directories only). */
function destinationOf(text: string | undefined): { type: "directory"; path: string } {
  if (text === undefined || text === "") {
    throw new UsageError("--destination: required (the output directory, a path or file:///path)");
  }
  if (text.startsWith("file://")) {
    let path = "";
    try {
      path = decodeURIComponent(new URL(text).pathname);
    } catch { /* reported below */ }
    if (!path || path === "/") {
      throw new UsageError(`--destination: "${text}" names no directory`);
    }
    return { type: "directory", path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new UsageError(
      `--destination: unsupported destination "${text}" (use a path or file:///path)`,
    );
  }
  return { type: "directory", path: text };
}

/** `--principals a,b --principals c` → `[a, b, c]`. */
function list(values: string[] | undefined): string[] | undefined {
  return values?.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v);
}

/**
 * The output `mode` asks for, from its flags, validated by the config
 * schema. Throws {@linkcode UsageError} naming the flag at fault.
 *
 * @example
 * ```ts
 * import { serviceFromFlags } from "./output_mode.ts";
 * const s = serviceFromFlags("ssh-host", { destination: "/opt/ssh", principals: ["h1,h2"] });
 * s.type; // "ssh_host"
 * ```
 */
export function serviceFromFlags(mode: OutputMode, f: TbotFlags): ServiceConfig {
  const readers = readersOf(f);
  const destination = { ...destinationOf(f.destination), ...(readers ? { readers } : {}) };
  const onRenew = onRenewOf(f);
  const hook = onRenew ? { on_renew: onRenew } : {};
  const selector = f.nameSelector === undefined ? undefined : { name: f.nameSelector };
  const raw = {
    identity: { type: "identity", destination, ...hook },
    "ssh-host": { type: "ssh_host", destination, principals: list(f.principals), ...hook },
    "workload-identity-x509": { type: "workload-identity-x509", destination, selector, ...hook },
    "workload-identity-jwt": {
      type: "workload-identity-jwt",
      destination,
      selector,
      audiences: list(f.audience),
      ...hook,
    },
  }[mode];
  const extra = [
    ["--principals", f.principals, "ssh-host"],
    ["--name-selector", f.nameSelector, "workload-identity-"],
    ["--audience", f.audience, "workload-identity-jwt"],
  ] as const;
  for (const [flag, value, modes] of extra) {
    if (value !== undefined && !mode.startsWith(modes)) {
      throw new UsageError(`${flag}: does not apply to "${mode}" (it is for ${modes}…)`);
    }
  }
  const parsed = ServiceConfig.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = fieldIssue(parsed.error.issues[0]);
  const [field, second, third] = issue.path.map(String);
  if (field === "destination" && second === "readers") {
    // The reader at fault, by the flag that named it.
    const reader = readers?.[Number(third)] ?? {};
    const [kind, name] = Object.entries(reader)[0] ?? ["user", ""];
    throw new UsageError(`--reader-${kind} "${name}": ${issue.message}`);
  }
  const flag = FLAG_OF_FIELD[`${field}.${second}`] ?? FLAG_OF_FIELD[field] ?? field;
  const values: unknown = (raw as Record<string, unknown>)[field];
  const index = issue.path[1];
  const item = Array.isArray(values) && typeof index === "number" ? ` "${values[index]}"` : "";
  throw new UsageError(`${flag}${item}: ${issue.message}`);
}

/** Environment variables that stand in for a flag the command line did not give, as in Teleport. */
export const FLAG_ENV = {
  token: "TELEPORT_BOT_TOKEN",
  proxyServer: "TELEPORT_PROXY",
  authServer: "TELEPORT_AUTH_SERVER",
  joinUri: "TBOT_JOIN_URI",
} as const;

/**
 * `flags` with the values of {@linkcode FLAG_ENV} filled in where no flag was
 * given. A flag wins over the environment; an address flag of either kind
 * wins over both address variables, which may not both be set without one.
 */
export function flagsWithEnv<F extends TbotFlags>(
  f: F,
  env: (name: string) => string | undefined,
): F {
  const out = { ...f };
  const read = (name: string) => {
    const v = env(name);
    return v === undefined || v === "" ? undefined : v;
  };
  if (out.token === undefined) out.token = read(FLAG_ENV.token);
  // Keybound's own: a URI holding the secret stays off the command line (`ps` shows argv).
  if (out.joinUri === undefined) out.joinUri = read(FLAG_ENV.joinUri);
  if (out.proxyServer === undefined && out.authServer === undefined) {
    out.proxyServer = read(FLAG_ENV.proxyServer);
    out.authServer = read(FLAG_ENV.authServer);
    // Teleport refuses both addresses at once; which one was meant is a guess, so say so.
    if (out.proxyServer !== undefined && out.authServer !== undefined) {
      throw new UsageError(
        `${FLAG_ENV.proxyServer} and ${FLAG_ENV.authServer} are both set: unset one ` +
          "(or pass --proxy-server or --auth-server, which wins over both)",
      );
    }
  }
  return out;
}

/**
 * {@linkcode flagsWithEnv}, then a joining URI given as an absolute path
 * (`--join-uri /run/secrets/join-uri`, or the same in `TBOT_JOIN_URI`) read
 * from that file, as Teleport reads a `--token` path: the secret-bearing URI
 * can come from a mounted secret file instead of argv or the environment.
 */
export async function flagsFromSources<F extends TbotFlags>(
  f: F,
  platform: Pick<TbotPlatform, "env" | "readTextFile" | "missingFileAccess">,
  log?: Logger,
): Promise<F> {
  const out = flagsWithEnv(f, platform.env);
  const given = out.joinUri;
  if (given === undefined) return out;
  // Errors name where the URI came from (never the URI: it may hold the secret).
  let source = f.joinUri === undefined ? FLAG_ENV.joinUri : "--join-uri";
  if (given.startsWith("/")) {
    checkFileAccess([{ path: given, access: "read", field: source }], platform);
    out.joinUri = (await platform.readTextFile(given)).trim();
    if (!out.joinUri) throw new UsageError(`${source}: the file ${given} is empty`);
    source = `${source} (${given})`;
  }
  const uri = flagValue(source, () => parseJoinUri(out.joinUri!));
  // Teleport accepts this form too, so it is not refused; but argv is readable
  // by every local user for the life of the process.
  if (source === "--join-uri" && uri.registrationSecret) {
    log?.warn(
      "--join-uri carries the registration secret on the command line, where any local user can " +
        "read it (ps, /proc): pass the URI in TBOT_JOIN_URI or as --join-uri /path of a file",
    );
  }
  return out;
}
