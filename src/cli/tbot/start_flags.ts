/**
 * `tbot start` flags and how they override the configuration file, as in
 * Teleport: a flag wins over the file (with a warning), and `--token`,
 * `--join-method` or `--ca-pin` replace the whole `onboarding` block.
 *
 * @module
 */
import { type JoinUri, parseJoinUri } from "../../agent/config/join_uri.ts";
import { throwProblems } from "../../agent/config/validate.ts";
import {
  CaPin,
  checkConfig,
  DEFAULT_CREDENTIAL_TTL,
  DEFAULT_RENEWAL_INTERVAL,
  DEFAULT_STORAGE_PATH,
  DurationMs,
  ServerAddress,
  type TbotConfig,
} from "../../agent/config/schema.ts";
import { ConfigError } from "../../errors.ts";
import { flagValue, UsageError } from "../flags/mod.ts";
import { parseDuration } from "../../util/duration.ts";
import { isHostPort } from "../../util/host_port.ts";
import type { Logger } from "../../util/log.ts";
import type { OutputMode, TbotFlags } from "./flags.ts";
import { serviceFromFlags } from "./output_mode.ts";

/**
 * Flags of `tbot start` (all optional; declared in {@linkcode TBOT}), and the
 * output mode of `tbot start MODE`, if any.
 */
export type StartFlags = TbotFlags & { mode?: OutputMode };

/** Parses a destination URI as Teleport does: `file:///abs`, a bare path, or `memory://`. */
export function parseStorageUri(text: string): TbotConfig["storage"] {
  if (text === "memory://") return { type: "memory" };
  if (text.startsWith("file://")) {
    let path;
    try {
      path = decodeURIComponent(new URL(text).pathname);
    } catch {
      throw new UsageError(`--storage: "${text}" is not a valid file:// URI`);
    }
    if (!path || path === "/") throw new UsageError(`--storage: "${text}" names no directory`);
    return { type: "directory", path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new UsageError(
      `--storage: unsupported destination "${text}" (use a path, file:// or memory://)`,
    );
  }
  return { type: "directory", path: text };
}

function address(flag: string, v: string): string {
  const r = ServerAddress.safeParse(v);
  if (!r.success) throw new UsageError(`${flag}: must be host:port (optionally with https://)`);
  return v;
}

/** The usage error of a command line that names no auth service. */
export const NO_SERVER_FLAG =
  "--proxy-server: required, or --auth-server (or TELEPORT_PROXY / TELEPORT_AUTH_SERVER)";

/**
 * The flags with a joining URI (`--join-uri`, after {@linkcode flagsFromSources})
 * expanded into the ones it bundles — address, token, join method, secret —
 * where no flag gives them: a flag given as well wins.
 */
export function withJoinUri<F extends TbotFlags>(flags: F): F {
  if (flags.joinUri === undefined) return flags;
  const u = flagValue("--join-uri", () => parseJoinUri(flags.joinUri!));
  const address = flags.proxyServer !== undefined || flags.authServer !== undefined
    ? {}
    : u.addressField === "proxy_server"
    ? { proxyServer: u.address }
    : { authServer: u.address };
  return {
    ...flags,
    ...address,
    token: flags.token ?? u.token,
    joinMethod: flags.joinMethod ?? "bound_keypair",
    registrationSecret: flags.registrationSecret ??
      (flags.registrationSecretPath === undefined ? u.registrationSecret : undefined),
  };
}

/**
 * The `--ca-pin` values, each checked by the config schema's own rule, and
 * never with `--insecure` (a pin is verification).
 */
export function caPinFlags(f: TbotFlags): string[] {
  const pins = f.caPin ?? [];
  for (const pin of pins) {
    const r = CaPin.safeParse(pin);
    if (!r.success) throw new UsageError(`--ca-pin: "${pin}" ${r.error.issues[0].message}`);
  }
  if (pins.length > 0 && f.insecure) {
    throw new UsageError("--insecure: not together with --ca-pin (a pin is verification)");
  }
  return pins;
}

/**
 * The auth service address the flags name (`--auth-server` wins over
 * `--proxy-server`), each checked as `tbot start` checks it; undefined when
 * neither is given. For commands that only contact the server.
 */
export function serverFromFlags(f: TbotFlags): string | undefined {
  const proxy = f.proxyServer === undefined ? undefined : address("--proxy-server", f.proxyServer);
  return f.authServer === undefined ? proxy : address("--auth-server", f.authServer);
}

function duration(flag: string, v: string): number {
  const r = DurationMs.safeParse(v);
  if (!r.success) {
    throw new UsageError(`${flag}: invalid duration "${v}" (examples: 90s, 20m, 1h)`);
  }
  return r.data;
}

/** The configuration when no file is given: Teleport's defaults, to be filled by flags. */
export function emptyConfig(): TbotConfig {
  return {
    version: "v2",
    debug: false,
    onboarding: { join_method: "bound_keypair", token: "", bound_keypair: {}, ca_pins: [] },
    insecure: false,
    storage: { type: "directory", path: DEFAULT_STORAGE_PATH },
    services: [],
    credential_ttl: parseDuration(DEFAULT_CREDENTIAL_TTL),
    renewal_interval: parseDuration(DEFAULT_RENEWAL_INTERVAL),
    oneshot: false,
  };
}

/**
 * Applies flags over `base` (a parsed file, or {@linkcode emptyConfig}) and
 * checks the result. Logs a warning for each flag that overrides a value the
 * file set.
 */
export function applyStartFlags(
  base: TbotConfig,
  fromFile: boolean,
  flags: StartFlags,
  log: Logger,
): TbotConfig {
  const c: TbotConfig = structuredClone(base);
  const f = withJoinUri(flags);
  // Logged once every value is known to be valid, so a mistake is the only line printed.
  const warnings: string[] = [];
  const warn = (flag: string, field: string, had: unknown) => {
    if (fromFile && had !== undefined && had !== false) {
      warnings.push(`command-line flag ${flag} overrides ${field} from the config file`);
    }
  };
  if (f.proxyServer !== undefined) {
    warn("--proxy-server", "proxy_server", c.proxy_server ?? c.auth_server);
    c.proxy_server = address("--proxy-server", f.proxyServer);
    delete c.auth_server;
  }
  if (f.authServer !== undefined) {
    warn("--auth-server", "auth_server", c.auth_server ?? c.proxy_server);
    c.auth_server = address("--auth-server", f.authServer);
    delete c.proxy_server;
  }
  if (f.token !== undefined || f.joinMethod !== undefined || (f.caPin?.length ?? 0) > 0) {
    warn("--token/--join-method/--ca-pin", "onboarding", fromFile ? c.onboarding : undefined);
    if (f.joinMethod !== undefined && f.joinMethod !== "bound_keypair") {
      throw new UsageError(
        `--join-method: unsupported join method "${f.joinMethod}" (Keybound supports: bound_keypair)`,
      );
    }
    caPinFlags(f);
    // The file's join_uri is not part of the block: its token (and secret) stay unless replaced.
    const fileUri = c.join_uri === undefined ? undefined : parseJoinUri(c.join_uri);
    const uriSecret = f.token === undefined ? fileUri?.registrationSecret : undefined;
    c.onboarding = {
      join_method: "bound_keypair",
      token: f.token ?? fileUri?.token ?? "",
      bound_keypair: uriSecret === undefined ? {} : { registration_secret: uriSecret },
      ca_pins: f.caPin ?? [],
    };
  }
  const bk = c.onboarding.bound_keypair;
  // Each flag replaces its config field; the two secret sources exclude each other.
  const boundKeypairFlags = [
    [
      "--registration-secret",
      "registration_secret",
      f.registrationSecret,
      "registration_secret_path",
    ],
    [
      "--registration-secret-path",
      "registration_secret_path",
      f.registrationSecretPath,
      "registration_secret",
    ],
    ["--static-key-path", "static_private_key_path", f.staticKeyPath, undefined],
  ] as const;
  for (const [flag, field, value, excludes] of boundKeypairFlags) {
    if (value === undefined) continue;
    warn(flag, `onboarding.bound_keypair.${field}`, bk[field]);
    bk[field] = value;
    if (excludes) delete bk[excludes];
  }
  if (f.storage !== undefined) {
    warn("--storage", "storage", fromFile ? c.storage : undefined);
    c.storage = parseStorageUri(f.storage);
  }
  if (f.certificateTtl !== undefined) {
    c.credential_ttl = duration("--certificate-ttl", f.certificateTtl);
  }
  if (f.renewalInterval !== undefined) {
    c.renewal_interval = duration("--renewal-interval", f.renewalInterval);
  }
  if (f.oneshot) c.oneshot = true;
  if (f.debug) c.debug = true;
  if (f.insecure) c.insecure = true;
  if (f.diagAddr !== undefined) {
    warn("--diag-addr", "diag_addr", c.diag_addr);
    if (!isHostPort(f.diagAddr)) {
      throw new UsageError(`--diag-addr: "${f.diagAddr}" must be host:port, e.g. 127.0.0.1:3000`);
    }
    c.diag_addr = f.diagAddr;
  }
  if (f.mode !== undefined) {
    // As in Teleport, a mode's output replaces the services a file configured.
    if (fromFile && c.services.length > 0) {
      warnings.push(
        `tbot start ${f.mode} replaces the services of the config file with its output`,
      );
    }
    c.services = [serviceFromFlags(f.mode, f)];
  }
  if (!fromFile && !c.proxy_server && !c.auth_server) throw new UsageError(NO_SERVER_FLAG);
  if (!c.onboarding.token) {
    if (!fromFile) throw new UsageError("--token: required (or TELEPORT_BOT_TOKEN)");
    throw new ConfigError(
      "onboarding.token: required (set it in the config file or pass --token)",
    );
  }
  throwProblems(checkConfig(c), fromFile ? "configuration (file and flags)" : "command-line flags");
  // join_uri is kept only while it still says where the address and token came from.
  c.join_uri = flags.joinUri ?? c.join_uri;
  if (c.join_uri !== undefined && !describes(parseJoinUri(c.join_uri), c)) delete c.join_uri;
  for (const w of warnings) log.warn(w);
  return c;
}

function describes(u: JoinUri, c: TbotConfig): boolean {
  return c[u.addressField] === u.address && c.onboarding.token === u.token;
}

/**
 * The configuration of a command line without a config file: Teleport's
 * defaults with the flags applied. Every problem is the command line's, so
 * it is a {@linkcode UsageError} (exit 2).
 */
export function configFromFlags(f: StartFlags, log: Logger): TbotConfig {
  try {
    return applyStartFlags(emptyConfig(), false, f, log);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message, { cause: e });
    throw e;
  }
}
