/**
 * `deno task auth start`: the Keybound auth service on Deno, with its state
 * in a Deno KV file inside `--data-dir` or, for several instances, in a
 * shared PostgreSQL database (`--storage postgres://…`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import denoJson from "../../deno.json" with { type: "json" };
import { isKeyboundError } from "../../src/errors.ts";
import {
  AuthMetrics,
  bootstrapCluster,
  caPin,
  createApp,
  createDiagApp,
  isAdminIdentityCurrent,
  isLoopbackHost,
  issueAdminIdentityFile,
  issueServerCertificate,
  parseWebOrigin,
  serverCertificateNames,
  type ServerContext,
} from "../../src/server/mod.ts";
import { certificatesFromPem } from "../../src/pki/mod.ts";
import { type HostPort, parseHostPort } from "../../src/util/host_port.ts";
import { createLogger, type Logger } from "../../src/util/log.ts";
import { ensureDir, writeFileAtomic } from "./fs.ts";
import {
  describeStorage,
  openStorage,
  parseStorageFlags,
  type StorageConfig,
} from "./auth_storage.ts";
import { onStopSignal, serveApp } from "./serve.ts";

const USAGE = `Usage: deno task auth start --data-dir DIR [flags]

Runs the Keybound auth service. The first start creates the cluster (CAs,
admin identity in DIR/admin-identity); later starts reuse it.

Flags:
  --data-dir DIR          state directory (required; created 0700)
  --listen HOST:PORT      address to listen on (default 127.0.0.1:3025; port 0 picks one)
  --cluster-name NAME     cluster name (default: this machine's host name)
  --public-addr HOST:PORT address clients use; repeatable; added to the server certificate
  --insecure-no-tls       serve plain HTTP (only on a loopback listen address)
  --tls-cert-file FILE    serve this certificate chain (PEM) from your own PKI instead of one
                          from the cluster's host CA; needs --tls-key-file
  --tls-key-file FILE     its private key (PEM)
  --log-format text|json  log line format on stderr (default text)
  --storage PATH|URL      cluster state: a Deno KV file (default DIR/keybound.kv) or
                          postgres://USER@HOST:PORT/DB?sslmode=MODE shared by several
                          instances (password from PGPASSWORD or --storage-password-file)
  --diag-addr HOST:PORT   diagnostics listener (plain HTTP): /livez, /readyz, /metrics
  --storage-password-file FILE
                          file holding the PostgreSQL password (one line)
  --web-origin ORIGIN     a browser origin (SCHEME://HOST[:PORT]) allowed to call the
                          service cross-origin; repeatable; none by default
  -h, --help              show this help
`;

export { KV_FILE } from "./auth_storage.ts";
/** The admin identity file inside the data directory. */
export const ADMIN_IDENTITY_FILE = "admin-identity";
/**
 * One line with the URL the service listens on, so `tctl --data-dir DIR` on
 * the auth host finds the server without being told the address.
 */
export const AUTH_SERVER_FILE = "auth-server";

/** Parsed `start` flags. */
interface StartConfig {
  dataDir: string;
  listen: HostPort;
  clusterName: string;
  publicAddrs: HostPort[];
  insecureNoTls: boolean;
  /** Operator-supplied certificate chain and key (PEM), read at start-up. */
  tlsFiles?: { cert: string; key: string };
  logFormat: "text" | "json";
  storage: StorageConfig;
  diagAddr?: HostPort;
  webOrigins: string[];
}

/** A command-line mistake: one line on stderr, exit code 2. */
class UsageError extends Error {}

function parseStartArgs(args: string[]): StartConfig | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        "data-dir": { type: "string" },
        listen: { type: "string", default: "127.0.0.1:3025" },
        "cluster-name": { type: "string" },
        "public-addr": { type: "string", multiple: true, default: [] },
        "insecure-no-tls": { type: "boolean", default: false },
        "tls-cert-file": { type: "string" },
        "tls-key-file": { type: "string" },
        "log-format": { type: "string", default: "text" },
        storage: { type: "string" },
        "diag-addr": { type: "string" },
        "storage-password-file": { type: "string" },
        "web-origin": { type: "string", multiple: true, default: [] },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    const msg = (err as Error).message;
    const flag = /'([^']+)'/.exec(msg)?.[1];
    throw new UsageError(
      (err as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag
        ? `unknown flag ${flag} (see --help)`
        : msg.split(". ")[0],
    );
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  if (positionals.length === 0) throw new UsageError("missing command (expected: start)");
  if (positionals[0] !== "start" || positionals.length > 1) {
    throw new UsageError(`unknown command "${positionals.join(" ")}" (expected: start)`);
  }
  if (!values["data-dir"]) throw new UsageError("--data-dir is required");
  const listen = parseHostPort(values.listen, "--listen");
  if (values["insecure-no-tls"] && !isLoopbackHost(listen.host)) {
    throw new UsageError(
      `--insecure-no-tls is refused on non-loopback address ${values.listen}: plain HTTP may only listen on 127.0.0.1, ::1 or localhost`,
    );
  }
  const logFormat = values["log-format"];
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format must be text or json, not "${logFormat}"`);
  }
  const tlsFiles = readTlsFiles(values["tls-cert-file"], values["tls-key-file"]);
  if (tlsFiles && values["insecure-no-tls"]) {
    throw new UsageError("--tls-cert-file and --insecure-no-tls contradict each other");
  }
  return {
    dataDir: values["data-dir"],
    logFormat,
    ...(tlsFiles ? { tlsFiles } : {}),
    listen,
    clusterName: values["cluster-name"] ?? Deno.hostname(),
    publicAddrs: values["public-addr"].map((a) => parseHostPort(a, "--public-addr", listen.port)),
    insecureNoTls: values["insecure-no-tls"],
    ...(values["diag-addr"] ? { diagAddr: parseHostPort(values["diag-addr"], "--diag-addr") } : {}),
    storage: parseStorageFlags(
      values.storage,
      values["storage-password-file"],
      values["data-dir"],
    ),
    webOrigins: values["web-origin"].map((o) => parseWebOrigin(o, "--web-origin")),
  };
}

/** Reads `--tls-cert-file` and `--tls-key-file` (both or neither); checks they hold PEM. */
function readTlsFiles(
  certFile: string | undefined,
  keyFile: string | undefined,
): { cert: string; key: string } | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw new UsageError("--tls-cert-file and --tls-key-file must be given together");
  }
  const read = (flag: string, path: string, re: RegExp, what: string) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (err) {
      throw new UsageError(`${flag} ${path}: ${(err as Error).message.split(":")[0]}`);
    }
    if (!re.test(text)) throw new UsageError(`${flag} ${path}: no PEM ${what} in the file`);
    return text;
  };
  const cert = read("--tls-cert-file", certFile, /-----BEGIN CERTIFICATE-----/, "certificate");
  const key = read("--tls-key-file", keyFile, /-----BEGIN (EC |RSA )?PRIVATE KEY-----/, "key");
  try {
    if (certificatesFromPem(cert).length === 0) throw new Error("empty");
  } catch {
    throw new UsageError(`--tls-cert-file ${certFile}: the certificate does not parse`);
  }
  return { cert, key };
}

/** Keeps the admin identity if it is still good for this cluster; writes a new one otherwise. */
async function ensureAdminIdentity(ctx: ServerContext, path: string, log: Logger): Promise<void> {
  let existing: string | undefined;
  try {
    existing = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (existing !== undefined && await isAdminIdentityCurrent(ctx, existing)) {
    await Deno.chmod(path, 0o600);
    return;
  }
  await writeFileAtomic(path, await issueAdminIdentityFile(ctx), { mode: 0o600 });
  log.info("wrote admin identity", { path });
}

async function start(config: StartConfig, log: Logger): Promise<void> {
  await ensureDir(config.dataDir, 0o700);
  await Deno.chmod(config.dataDir, 0o700);
  const metrics = new AuthMetrics();
  const backend = metrics.meter(await openStorage(config.storage));
  log.info("storage open", { storage: describeStorage(config.storage) });
  try {
    const ctx = await bootstrapCluster(backend, {
      clusterName: config.clusterName,
      log,
      version: denoJson.version,
    });
    await ensureAdminIdentity(ctx, join(config.dataDir, ADMIN_IDENTITY_FILE), log);

    // The server certificate is issued afresh at every start and never stored,
    // unless the operator brings one from their own PKI.
    const tls = config.insecureNoTls ? undefined : config.tlsFiles ?? await issueServerCertificate(
      ctx,
      serverCertificateNames({
        listenHost: config.listen.host,
        publicHosts: config.publicAddrs.map((a) => a.host),
        hostname: Deno.hostname(),
      }),
    ).then((c) => ({ cert: c.certPem, key: c.keyPem }));

    const app = createApp(ctx, { webOrigins: config.webOrigins });
    const server = serveApp({ fetch: metrics.timeRequests(app.fetch) }, {
      hostname: config.listen.host,
      port: config.listen.port,
      tls,
    });
    const diag = config.diagAddr
      ? serveApp(createDiagApp(ctx, metrics), {
        hostname: config.diagAddr.host,
        port: config.diagAddr.port,
      })
      : undefined;
    // Listeners go in before the startup lines: whoever reads them may signal at once.
    const removeSignals = onStopSignal((signal) => {
      log.info("stopping", { signal });
      server.shutdown();
      diag?.shutdown();
    });
    await writeFileAtomic(join(config.dataDir, AUTH_SERVER_FILE), `${server.url}\n`, {
      mode: 0o600,
    });
    if (diag) console.log(`Keybound auth diagnostics listening on ${diag.url}`);
    console.log(`Keybound auth service listening on ${server.url}`);
    console.log(`CA pin ${await caPin(ctx.cas.host)}`);
    if (config.insecureNoTls) log.warn("serving plain HTTP (--insecure-no-tls)");
    if (config.webOrigins.length > 0) {
      log.info("browser origins allowed", { origins: config.webOrigins });
    }
    await server.finished;
    await diag?.finished;
    removeSignals();
  } finally {
    await backend.close();
  }
  log.info("stopped");
}

/** Runs the CLI; returns the process exit code. Started by ./entry/auth.ts. */
export async function main(args: string[]): Promise<number> {
  let config;
  try {
    config = parseStartArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError) && !isKeyboundError(err)) throw err;
    console.error(`error: ${err.message}`);
    return 2;
  }
  if (config === "help") {
    console.log(USAGE);
    return 0;
  }
  const log = createLogger({ component: "auth", format: config.logFormat });
  try {
    await start(config, log);
    return 0;
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
