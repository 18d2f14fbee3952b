/**
 * Where tctl connects and as whom: `--auth-server` / `-i`, `--data-dir` on
 * the auth host (DIR/auth-server and DIR/admin-identity), or the environment
 * variables TELEPORT_AUTH_SERVER and TELEPORT_IDENTITY_FILE, in that order;
 * which CAs besides the identity file's host CAs vouch for the service:
 * `--ca-path` or TELEPORT_CA_PATH (an operator PKI's CA, for a service
 * started with `--tls-cert-file`). A variable tctl may not read (outside a
 * narrowed `--allow-env`) is refused by name when it is consulted, never
 * taken for unset: that would pick another server, identity or trust.
 *
 * @module
 */
import { BadParameterError, errorMessage } from "../../errors.ts";
import { decidingEnv, type EnvReader } from "../env.ts";
import { certificatesFromPem, parseCertificate } from "../../pki/mod.ts";
import { UsageError } from "./command.ts";
import { formatHostPort, isLoopbackHost, parseServerAddress } from "../../util/host_port.ts";
import { ADMIN_IDENTITY_FILE, AUTH_SERVER_FILE, dataDirFile } from "../auth/data_dir.ts";
import type { TctlFlags } from "./options.ts";

/** Default port of the auth service. */
export const DEFAULT_AUTH_PORT = 3025;

/** Resolved connection settings. */
export interface ConnectionSettings {
  /** `https://host:port` or, on loopback only, `http://host:port`. */
  baseUrl: string;
  /** Path of the identity file. */
  identityPath: string;
  /** Skip verification of the server certificate. */
  insecure: boolean;
  /** CA certificates (PEM) trusted together with the identity file's host CAs. */
  caPems: string[];
}

/** What {@linkcode resolveConnection} reads from its environment. */
export interface ConnectionEnvironment extends EnvReader {
  /** Reads a text file; throws (saying why, in a few words) if it cannot. */
  readTextFile(path: string): Promise<string>;
}

/**
 * Normalises an auth server address to a base URL: `HOST[:PORT]` means
 * `https://HOST:PORT` (default port 3025); `http://` is accepted only for
 * loopback hosts, since requests would otherwise travel unencrypted.
 */
export function authServerUrl(address: string, what = "--auth-server"): string {
  const a = parseServerAddress(address.trim(), what, DEFAULT_AUTH_PORT);
  if (a.scheme === "http:" && !isLoopbackHost(a.hostname)) {
    throw new BadParameterError(
      `${what}: plain http:// is only allowed for loopback addresses, got "${address}"`,
    );
  }
  return `${a.scheme}//${formatHostPort(a.hostname, a.port)}`;
}

/** tctl's connection variables: allowed together, each may stay unset. */
const CONNECTION_VARIABLES = ["TELEPORT_AUTH_SERVER", "TELEPORT_IDENTITY_FILE", "TELEPORT_CA_PATH"];

/** Variable `name` of {@linkcode CONNECTION_VARIABLES}, which decides `decides` unless `instead`. */
function connectionEnv(
  environment: EnvReader,
  name: string,
  decides: string,
  instead: string,
): string | undefined {
  return decidingEnv(environment, name, { decides, allow: CONNECTION_VARIABLES, instead });
}

/** Resolves where to connect and which identity file to use; throws naming what is missing. */
export async function resolveConnection(
  flags: TctlFlags,
  environment: ConnectionEnvironment,
): Promise<ConnectionSettings> {
  const dataDir = flags.dataDir;
  let address = flags.authServer;
  let what = "--auth-server";
  if (address === undefined && dataDir !== undefined) {
    const path = dataDirFile(dataDir, AUTH_SERVER_FILE);
    try {
      address = (await environment.readTextFile(path)).trim();
    } catch (cause) {
      // Why, too: "tctl may not read …: its --allow-read does not name it" is no missing file.
      throw new BadParameterError(
        `cannot read ${path}: ${errorMessage(cause)} (the auth service writes it at start); ` +
          "pass --auth-server HOST:PORT",
        { cause },
      );
    }
    what = path;
  }
  if (address === undefined) {
    address = connectionEnv(
      environment,
      "TELEPORT_AUTH_SERVER",
      "which auth service tctl talks to",
      "pass --auth-server HOST:PORT or --data-dir DIR",
    );
    what = "TELEPORT_AUTH_SERVER";
  }
  if (!address) {
    throw new BadParameterError(
      "no auth server: pass --auth-server HOST:PORT, --data-dir DIR, or set TELEPORT_AUTH_SERVER",
    );
  }
  const identityPath = flags.identity ??
    (dataDir !== undefined ? dataDirFile(dataDir, ADMIN_IDENTITY_FILE) : undefined) ??
    connectionEnv(
      environment,
      "TELEPORT_IDENTITY_FILE",
      "whose identity tctl acts with",
      "pass -i/--identity FILE or --data-dir DIR",
    );
  if (!identityPath) {
    throw new BadParameterError(
      "no identity: pass -i/--identity FILE, --data-dir DIR, or set TELEPORT_IDENTITY_FILE",
    );
  }
  const caPath = flags.caPath ??
    connectionEnv(
      environment,
      "TELEPORT_CA_PATH",
      "which CAs tctl trusts for the auth service",
      "pass --ca-path FILE",
    );
  const caWhat = flags.caPath !== undefined ? "--ca-path" : "TELEPORT_CA_PATH";
  if (caPath && flags.insecure) {
    throw new UsageError(`${caWhat} cannot be combined with --insecure`);
  }
  return {
    baseUrl: authServerUrl(address, what),
    identityPath,
    insecure: !!flags.insecure,
    caPems: caPath ? [await readCaFile(caPath, caWhat, environment)] : [],
  };
}

/** The text of a CA file that holds only parseable certificates; a usage error naming `what` otherwise. */
async function readCaFile(
  path: string,
  what: string,
  environment: ConnectionEnvironment,
): Promise<string> {
  let pem: string;
  try {
    pem = await environment.readTextFile(path);
  } catch (cause) {
    throw new UsageError(`${what}: cannot read ${path}: ${errorMessage(cause)}`, { cause });
  }
  try {
    // Parsed here, so a damaged block is named now rather than as a TLS failure later.
    for (const der of certificatesFromPem(pem)) parseCertificate(der);
  } catch (cause) {
    throw new UsageError(
      `${what}: ${path} holds no valid PEM certificate (${errorMessage(cause)})`,
      {
        cause,
      },
    );
  }
  return pem;
}
