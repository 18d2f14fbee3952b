/**
 * The auth service's command line (`auth start --data-dir DIR …`): its flag
 * table and the checks that turn it into a {@linkcode AuthStartConfig}. The
 * runtime adapter only supplies the argument parser and the host name.
 *
 * @module
 */
import * as z from "zod";
import {
  type ArgParser,
  commandHelp,
  flagValue,
  parseCommandLine,
  programHelp,
  type ProgramSpec,
  UsageError,
} from "../flags/mod.ts";
import { type HostPort, isLoopbackHost, parseHostPort } from "../../util/host_port.ts";
import { parseDuration } from "../../util/duration.ts";

const FLAGS = {
  "data-dir": {
    type: "string",
    value: "DIR",
    help:
      "state directory (required; created 0700; a path over 64 bytes needs XDG_RUNTIME_DIR or root)",
  },
  listen: {
    type: "string",
    value: "HOST:PORT",
    default: "127.0.0.1:3025",
    help: "address to listen on (port 0 picks one)",
  },
  "cluster-name": {
    type: "string",
    value: "NAME",
    help: "cluster name (default: this machine's host name)",
  },
  "public-addr": {
    type: "string",
    multiple: true,
    value: "HOST:PORT",
    help: "address clients use; added to the server certificate",
  },
  "insecure-no-tls": {
    type: "boolean",
    help: "serve plain HTTP (only on a loopback listen address)",
  },
  "tls-cert-file": {
    type: "string",
    value: "FILE",
    help: "serve this certificate chain (PEM) from your own PKI instead of one " +
      "from the cluster's host CA; needs --tls-key-file",
  },
  "tls-key-file": { type: "string", value: "FILE", help: "its private key (PEM)" },
  "tls-cert-ttl": {
    type: "string",
    value: "DURATION",
    help: "lifetime of the certificate the service issues itself from the host CA " +
      "(default 8760h, at least 6s); a running service replaces it at two thirds of it",
  },
  "log-format": {
    type: "string",
    value: "text|json",
    default: "text",
    help: "log line format on stderr",
  },
  storage: {
    type: "string",
    value: "PATH|URL",
    help: "cluster state: a Deno KV file (default DIR/keybound.kv) or " +
      "postgres://USER@HOST:PORT/DB?sslmode=MODE shared by several instances " +
      "(password from PGPASSWORD or --storage-password-file)",
  },
  "storage-password-file": {
    type: "string",
    value: "FILE",
    help: "file holding the PostgreSQL password (one line)",
  },
  "diag-addr": {
    type: "string",
    value: "HOST:PORT",
    help: "diagnostics listener (plain HTTP): /livez, /readyz, /metrics",
  },
  "proxy-protocol-from": {
    type: "string",
    multiple: true,
    value: "IP",
    help: "a load balancer that sends PROXY protocol v2 (HAProxy send-proxy-v2); its " +
      "connections must carry the header, which gives audit events and rate limits " +
      "the client's address",
  },
  "web-origin": {
    type: "string",
    multiple: true,
    value: "ORIGIN",
    help: "a browser origin (SCHEME://HOST[:PORT]) allowed to call the service " +
      "cross-origin; none by default",
  },
  "rate-limit": {
    type: "string",
    value: "N",
    help: "unauthenticated requests per second per source address (default 20)",
  },
  "rate-limit-burst": {
    type: "string",
    value: "N",
    help: "requests a source address may send at once (default 200)",
  },
  "max-connections-per-source": {
    type: "string",
    value: "N",
    help: "connections one source address (IPv6: a /64; behind --proxy-protocol-from, the " +
      "client the header names) may hold at the TLS front; more are closed before TLS " +
      "(default 512)",
  },
  "max-connections": {
    type: "string",
    value: "N",
    help: "connections the TLS front holds in all; a new one beyond closes the oldest of the " +
      "source holding the most (default 4096, fewer if the descriptor limit allows fewer)",
  },
  "max-connection-rate-per-source": {
    type: "string",
    value: "N",
    help: "new connections one source address (as for --max-connections-per-source) may open " +
      "per second at the TLS front, twice that at once; more are closed before TLS (default 500)",
  },
  help: { type: "boolean", short: "h", help: "show help" },
} as const;

/** Shortest `--tls-cert-ttl`: shorter would swap certificates faster than clients reconnect. */
const MIN_TLS_CERT_TTL_MS = 6_000;

/** The auth service's flags and commands. */
export const AUTH: ProgramSpec<typeof FLAGS> = {
  name: "auth",
  summary: "Runs the Keybound auth service. The first start creates the cluster (CAs,\n" +
    "admin identity in DIR/admin-identity); later starts reuse it.",
  flags: FLAGS,
  global: ["help"],
  commands: [{
    path: ["start"],
    args: "",
    arity: [0, 0],
    summary: "run the auth service",
    flags: [
      "data-dir",
      "listen",
      "cluster-name",
      "public-addr",
      "insecure-no-tls",
      "tls-cert-file",
      "tls-key-file",
      "tls-cert-ttl",
      "log-format",
      "storage",
      "storage-password-file",
      "diag-addr",
      "proxy-protocol-from",
      "web-origin",
      "rate-limit",
      "rate-limit-burst",
      "max-connections-per-source",
      "max-connections",
      "max-connection-rate-per-source",
    ],
    required: ["data-dir"],
  }, {
    path: ["admin-identity"],
    args: "",
    arity: [0, 0],
    summary: "break-glass on the auth host: write a fresh admin identity to DIR/admin-identity " +
      "and lift every lock that targets the admin, audited (docs/security.md)",
    flags: ["data-dir", "storage", "storage-password-file"],
    required: ["data-dir"],
  }],
  footer: "From a checkout: deno task auth start --data-dir DIR [flags]",
};

/** What `auth start` runs with. */
export interface AuthStartConfig {
  /** State directory. */
  dataDir: string;
  /** Listen address. */
  listen: HostPort;
  /** Cluster name. */
  clusterName: string;
  /** Addresses clients use (server certificate names). */
  publicAddrs: HostPort[];
  /** Plain HTTP (loopback only). */
  insecureNoTls: boolean;
  /** Log line format. */
  logFormat: "text" | "json";
  /** `--tls-cert-file` (the adapter reads it; given with `--tls-key-file`). */
  tlsCertFile?: string;
  /** `--tls-key-file`. */
  tlsKeyFile?: string;
  /** `--tls-cert-ttl` in milliseconds (unset: the server's default lifetime). */
  tlsCertTtlMs?: number;
  /** `--web-origin` values as given (the adapter checks them). */
  webOrigins: string[];
  /** Diagnostics listener. */
  diagAddr?: HostPort;
  /** Balancer IPs whose connections start with a PROXY protocol v2 header. */
  proxyFrom: string[];
  /** `--storage` as given (the adapter opens it). */
  storage?: string;
  /** `--storage-password-file`. */
  storagePasswordFile?: string;
  /** `--rate-limit` / `--rate-limit-burst` when given; the server's defaults fill the rest. */
  rateLimit: { perSecond?: number; burst?: number };
  /**
   * `--max-connections-per-source` / `--max-connections` /
   * `--max-connection-rate-per-source` when given; the front's defaults fill
   * the rest.
   */
  connections: {
    maxConnectionsPerSource?: number;
    maxConnections?: number;
    maxConnectionRatePerSource?: number;
  };
}

/** What `auth admin-identity` runs with. */
export type AuthAdminIdentityConfig = Pick<
  AuthStartConfig,
  "dataDir" | "storage" | "storagePasswordFile"
>;

/** What the command line asks for: help (with its exit code), a start or the break-glass. */
export type AuthCommandLine =
  | { kind: "help"; text: string; exitCode: number }
  | { kind: "start"; config: AuthStartConfig }
  | { kind: "admin-identity"; config: AuthAdminIdentityConfig };

/**
 * Parses and checks the auth service's command line. Throws
 * {@linkcode UsageError} naming the flag on any mistake.
 */
export function parseAuthCommandLine(
  argv: string[],
  parser: ArgParser,
  hostname: () => string,
): AuthCommandLine {
  const line = parseCommandLine(AUTH, argv, parser);
  if (line.kind === "help") {
    const text = line.command ? commandHelp(AUTH, line.command) : programHelp(AUTH);
    return { kind: "help", text, exitCode: line.missingCommand ? 2 : 0 };
  }
  const f = line.flags;
  if (line.command.path[0] === "admin-identity") {
    return {
      kind: "admin-identity",
      config: {
        dataDir: f.dataDir!,
        storage: f.storage,
        storagePasswordFile: f.storagePasswordFile,
      },
    };
  }
  const listenText = f.listen!;
  const listen = flagValue("--listen", () => parseHostPort(listenText, "--listen"));
  if (f.insecureNoTls && !isLoopbackHost(listen.host)) {
    throw new UsageError(
      `--insecure-no-tls is refused on non-loopback address ${listenText}: plain HTTP may only listen on 127.0.0.1, ::1 or localhost`,
    );
  }
  const logFormat = f.logFormat;
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format must be text or json, not "${logFormat}"`);
  }
  if ((f.tlsCertFile === undefined) !== (f.tlsKeyFile === undefined)) {
    throw new UsageError("--tls-cert-file and --tls-key-file must be given together");
  }
  if (f.tlsCertFile !== undefined && f.insecureNoTls) {
    throw new UsageError("--tls-cert-file and --insecure-no-tls contradict each other");
  }
  if (f.tlsCertTtl !== undefined && (f.tlsCertFile !== undefined || f.insecureNoTls)) {
    throw new UsageError(
      "--tls-cert-ttl sets the lifetime of the service's own certificate: it has none with " +
        (f.tlsCertFile !== undefined ? "--tls-cert-file" : "--insecure-no-tls"),
    );
  }
  const tlsCertTtlMs = f.tlsCertTtl === undefined
    ? undefined
    : flagValue("--tls-cert-ttl", () => parseDuration(f.tlsCertTtl!));
  if (tlsCertTtlMs !== undefined && tlsCertTtlMs < MIN_TLS_CERT_TTL_MS) {
    throw new UsageError(`--tls-cert-ttl: at least 6s, got "${f.tlsCertTtl}"`);
  }
  for (const ip of f.proxyProtocolFrom ?? []) {
    if (!/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/.test(ip)) {
      throw new UsageError(`--proxy-protocol-from: "${ip}" is not an IP address`);
    }
  }
  return {
    kind: "start",
    config: {
      dataDir: f.dataDir!,
      listen,
      clusterName: f.clusterName ?? hostname(),
      publicAddrs: (f.publicAddr ?? []).map((a) =>
        flagValue("--public-addr", () => parseHostPort(a, "--public-addr", listen.port))
      ),
      insecureNoTls: !!f.insecureNoTls,
      logFormat,
      ...(f.tlsCertFile === undefined
        ? {}
        : { tlsCertFile: f.tlsCertFile, tlsKeyFile: f.tlsKeyFile }),
      ...(tlsCertTtlMs === undefined ? {} : { tlsCertTtlMs }),
      webOrigins: f.webOrigin ?? [],
      proxyFrom: f.proxyProtocolFrom ?? [],
      ...(f.diagAddr === undefined
        ? {}
        : { diagAddr: flagValue("--diag-addr", () => parseHostPort(f.diagAddr!, "--diag-addr")) }),
      storage: f.storage,
      storagePasswordFile: f.storagePasswordFile,
      rateLimit: {
        ...positive("number", "--rate-limit", "perSecond", f.rateLimit),
        ...positive("number", "--rate-limit-burst", "burst", f.rateLimitBurst),
      },
      connections: {
        ...positive(
          "integer",
          "--max-connections-per-source",
          "maxConnectionsPerSource",
          f.maxConnectionsPerSource,
        ),
        ...positive("integer", "--max-connections", "maxConnections", f.maxConnections),
        ...positive(
          "integer",
          "--max-connection-rate-per-source",
          "maxConnectionRatePerSource",
          f.maxConnectionRatePerSource,
        ),
      },
    },
  };
}

/** What a numeric flag takes: a zod schema, and its words for the error. */
const POSITIVE = {
  /**
   * A count in decimal digits, at least 1 and exactly representable: a value
   * past 2^53 − 1 would be rounded (9007199254740993 read as …992) or become
   * 1e23 without a word.
   */
  integer: {
    schema: z.string().trim().regex(/^\d+$/).transform(Number).pipe(z.int().positive()),
    expected: `a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`,
  },
  /** Any finite number above 0 that `Number` reads (a rate: 0.5 is one every 2 s). */
  number: {
    schema: z.string().trim().min(1).transform(Number).pipe(z.number().positive()),
    expected: "a positive number",
  },
};

/** `{ [key]: value }` for a flag given, `{}` for one not given; a bad value is a {@linkcode UsageError} naming the flag. */
function positive<K extends string>(
  kind: keyof typeof POSITIVE,
  flag: string,
  key: K,
  text: string | undefined,
): Partial<Record<K, number>> {
  if (text === undefined) return {};
  const parsed = POSITIVE[kind].schema.safeParse(text);
  if (!parsed.success) {
    throw new UsageError(`${flag}: expected ${POSITIVE[kind].expected}, got "${text}"`);
  }
  return { [key]: parsed.data } as Partial<Record<K, number>>;
}
