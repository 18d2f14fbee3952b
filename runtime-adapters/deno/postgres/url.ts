/**
 * The `--storage postgres://USER@HOST:PORT/DB?sslmode=…` URL. The password
 * never comes from the URL (it would show in `ps` and shell history): it comes
 * from `PGPASSWORD` or `--storage-password-file`.
 *
 * @module
 */
import { ConfigError } from "../../../src/errors.ts";

/** libpq's TLS modes, with libpq's meaning. */
export const SSL_MODES = [
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
] as const;
/** One of {@linkcode SSL_MODES}. */
export type SslMode = typeof SSL_MODES[number];

/** Where the PostgreSQL backend connects. */
export interface PostgresLocation {
  /** Host name or IP address. */
  host: string;
  /** TCP port (default 5432). */
  port: number;
  /** Database name. */
  database: string;
  /** Role to log in as. */
  user: string;
  /** TLS mode (default `prefer`, as libpq). */
  sslmode: SslMode;
  /** CA certificates (PEM file) for `verify-ca` / `verify-full`; system roots when absent. */
  sslrootcert?: string;
  /** `host:port/database`, for messages and logs (no credentials). */
  display: string;
}

const QUERY_PARAMS = new Set(["sslmode", "sslrootcert"]);

/** True if `value` selects PostgreSQL rather than a Deno KV path. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/**
 * Parses a PostgreSQL URL; throws `ConfigError` naming `flag` and the
 * offending part. Never echoes a password.
 */
export function parsePostgresUrl(value: string, flag = "--storage"): PostgresLocation {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${flag}: not a valid URL (expected postgres://USER@HOST:PORT/DB)`);
  }
  if (!/^postgres(ql)?:$/.test(url.protocol)) {
    throw new ConfigError(`${flag}: unsupported scheme "${url.protocol}" (expected postgres://)`);
  }
  if (url.password) {
    throw new ConfigError(
      `${flag}: the URL must not contain a password; set PGPASSWORD or use --storage-password-file`,
    );
  }
  const user = decodeURIComponent(url.username);
  if (!user) throw new ConfigError(`${flag}: the URL names no user (postgres://USER@HOST/DB)`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new ConfigError(`${flag}: the URL names no host`);
  const port = url.port ? Number(url.port) : 5432;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!database || database.includes("/")) {
    throw new ConfigError(`${flag}: the URL must name one database (postgres://USER@HOST/DB)`);
  }
  for (const k of url.searchParams.keys()) {
    if (!QUERY_PARAMS.has(k)) {
      throw new ConfigError(
        `${flag}: unknown URL parameter "${k}" (supported: ${[...QUERY_PARAMS].join(", ")})`,
      );
    }
  }
  const mode = url.searchParams.get("sslmode") ?? "prefer";
  if (!(SSL_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(`${flag}: sslmode "${mode}" is not one of ${SSL_MODES.join(", ")}`);
  }
  const sslrootcert = url.searchParams.get("sslrootcert") ?? undefined;
  if (sslrootcert !== undefined && !mode.startsWith("verify-")) {
    throw new ConfigError(`${flag}: sslrootcert needs sslmode=verify-ca or verify-full`);
  }
  const hostPort = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return {
    host,
    port,
    database,
    user,
    sslmode: mode as SslMode,
    ...(sslrootcert !== undefined ? { sslrootcert } : {}),
    display: `${hostPort}/${database}`,
  };
}
