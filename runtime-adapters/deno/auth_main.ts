/**
 * `deno task auth start`: the Keybound auth service on Deno, with its state
 * in a Deno KV file inside `--data-dir` or, for several instances, in a
 * shared PostgreSQL database (`--storage postgres://…`).
 *
 * @module
 */
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
  issueAdminIdentityFile,
  issueServerCertificate,
  parseWebOrigin,
  serverCertificateNames,
  serverCertificateRenewAt,
  type ServerContext,
  servingKeyChanged,
  startCaWatcher,
  validateClusterName,
} from "../../src/server/mod.ts";
import { certificatesFromPem } from "../../src/pki/mod.ts";
import {
  ADMIN_IDENTITY_FILE,
  AUTH_SERVER_FILE,
  FRONT_SOCKET_DIR,
  KV_FILE,
} from "../../src/cli/auth/data_dir.ts";
import { errorLineOf } from "../../src/cli/error_line.ts";
import {
  AUTH,
  type AuthAdminIdentityConfig,
  type AuthStartConfig,
  parseAuthCommandLine,
} from "../../src/cli/auth/command_line.ts";
import { adminIdentity } from "./auth_admin_identity.ts";
import { UsageError } from "../../src/cli/flags/mod.ts";
import { createLogger, type Logger } from "../../src/util/log.ts";
import { writeFileAtomic } from "./fs.ts";
import {
  describeStorage,
  isNewKvFile,
  openStorage,
  parseStorageFlags,
  type StorageConfig,
} from "./auth_storage.ts";
import { checkSocketDir, serveApp, serveService } from "./serve.ts";
import { onStopSignal } from "./entry/auth_signals.ts";
import { checkDataDir, checkStorageFile, takeDataDir } from "./data_dir_checks.ts";
import { connectionsFit } from "./tls_front.ts";
import { argParser } from "./arg_parser.ts";
import { loadConsoleAssets } from "./console_assets.ts";

/** `start` flags checked by src/cli/auth, plus what only this runtime can read. */
type StartConfig = Omit<AuthStartConfig, "storage" | "webOrigins"> & {
  /** Operator-supplied certificate chain and key (PEM), read at start-up. */
  tlsFiles?: { cert: string; key: string };
  storage: StorageConfig;
  webOrigins: string[];
};

function parseStartArgs(
  args: string[],
): StartConfig | { help: string; exitCode: number } | { adminIdentity: AuthAdminIdentityConfig } {
  const line = parseAuthCommandLine(args, argParser, () => Deno.hostname());
  if (line.kind === "help") return { help: line.text, exitCode: line.exitCode };
  if (line.kind === "admin-identity") return { adminIdentity: line.config };
  const c = line.config;
  checkConnectionsFit(c.connections.maxConnections, c.proxyFrom.length > 0);
  const tlsFiles = readTlsFiles(c.tlsCertFile, c.tlsKeyFile);
  return {
    ...c,
    ...(tlsFiles ? { tlsFiles } : {}),
    storage: parseStorageFlags(c.storage, c.storagePasswordFile, c.dataDir),
    webOrigins: c.webOrigins.map((o) => parseWebOrigin(o, "--web-origin")),
  };
}

/**
 * Refuses a `--max-connections` the descriptor limit cannot hold: the cap is
 * there so that a flood meets it before storage, files or the loopback
 * server's accept fail for want of a descriptor; a cap above the limit would
 * let it reach them, and a warning at start is easily missed (the shortage
 * comes later, under load).
 */
function checkConnectionsFit(max: number | undefined, balanced: boolean): void {
  const fit = connectionsFit(undefined, balanced);
  if (max === undefined || fit === undefined || max <= fit) return;
  throw new UsageError(
    `--max-connections ${max}: the descriptor limit holds at most ${fit} connections ` +
      "(3 descriptors each, plus a reserve for the rest of the process" +
      (balanced ? " and for balancer connections waiting for their PROXY header" : "") + "); " +
      "raise LimitNOFILE (ulimit -n) or lower --max-connections",
  );
}

function readTlsFiles(
  certFile: string | undefined,
  keyFile: string | undefined,
): { cert: string; key: string } | undefined {
  // src/cli/auth checked that both or neither are given.
  if (certFile === undefined || keyFile === undefined) return undefined;
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

/**
 * Runs the service until a stop signal; one that comes during the start
 * ends it at its next step, storage closed (no `-wal`/`-shm` left, no
 * socket lock file), and the process exits 0 as after any stop: until
 * session 13 the listeners went in only once the service listened, and a
 * SIGTERM before that killed the process (exit 143) with its storage open.
 */
async function start(config: StartConfig, log: Logger): Promise<void> {
  const stop = new AbortController();
  const removeSignals = onStopSignal((signal) => {
    log.info("stopping", { signal });
    stop.abort();
  });
  try {
    await run(config, log, stop.signal);
  } catch (err) {
    // Asked to stop, it has stopped: a step it waited for that failed meanwhile (a PostgreSQL
    // that never answered) is said, but the exit is a stop's, 0, not a failed start's
    // (review-front s13 S3: systemd counted `systemctl stop` in an outage as a failure).
    if (!stop.signal.aborted) throw err;
    log.warn("the start failed while stopping", { error: errorLineOf(AUTH.name, err) });
  } finally {
    removeSignals();
  }
  log.info("stopped");
}

/**
 * Whether a stop was asked by now. A signal is delivered to JavaScript only
 * when the event loop runs, and the checks before a checkpoint are
 * synchronous (a signal that came during a slow `lstat` of the data
 * directory's walk was still undelivered at the next checkpoint, and the
 * data directory was made; CI, session 13): a timer's turn lets it in first.
 */
async function stopped(stop: AbortSignal): Promise<boolean> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  return stop.aborted;
}

/** The start's steps; `stop`, aborted by a stop signal, ends it at its next step. */
async function run(config: StartConfig, log: Logger, stop: AbortSignal): Promise<void> {
  // The name is checked before anything is written (review-ca N2): the rules
  // for any cluster always, and a new cluster's where the start would create
  // one, a Deno KV file not there yet. Whether a PostgreSQL database holds a
  // cluster is known only once connected: there bootstrapCluster checks it
  // before storing anything, and the data directory is made after that.
  validateClusterName(config.clusterName);
  // Where the server behind the TLS front may put its socket, likewise: a
  // data directory whose path is too long for it, with no runtime directory
  // to use instead, stops the start before the cluster is made.
  // A --data-dir that is a link (systemd's StateDirectory with DynamicUser:
  // /var/lib/NAME -> private/NAME) is used by its real path from here on,
  // its links followed only if root's or this user's (review-front2 S1).
  // The data directory is checked at every start, TLS or not, wherever the
  // front's socket goes: it holds the CA keys (review-front2 M1). Checks
  // come before the data directory is made or changed (review-front S1).
  // The front (and its socket) runs with TLS or behind a balancer; the refusals name it only then.
  const front = !config.insecureNoTls || config.proxyFrom.length > 0;
  const dataDir = checkDataDir(config.dataDir, front);
  // The KV file too: opened through the link, it could be another file than the one checked.
  // A KV file named by --storage holds the CA keys too: checked the same way,
  // in full now (a refused start leaves nothing made), unless it lies right
  // in the data directory the start makes: then as far as it exists, and in
  // full again once the data directory is made.
  const named = config.storage.kind === "kv" &&
      config.storage.path !== join(config.dataDir, KV_FILE)
    ? config.storage.path
    : undefined;
  let storage: StorageConfig = config.storage.kind !== "kv"
    ? config.storage
    : named === undefined
    ? { kind: "kv", path: join(dataDir, KV_FILE) }
    : { kind: "kv", path: checkStorageFile(named, dataDir) };
  const socketDir = join(dataDir, FRONT_SOCKET_DIR);
  // A stop asked by now makes nothing: not the runtime directory's place, not the data
  // directory (review-front s13 S2).
  if (await stopped(stop)) return;
  if (front) await checkSocketDir(socketDir);
  if (await isNewKvFile(storage)) validateClusterName(config.clusterName, true);
  if (await stopped(stop)) return;
  // Made without following a link, walked again, and only then chmod'ed and written
  // (review-front2 M2: a directory another user made first in /tmp got root's cluster).
  const makeDataDir = () => takeDataDir(config.dataDir, dataDir, front);
  if (storage.kind === "kv") {
    await makeDataDir();
    if (named !== undefined) storage = { kind: "kv", path: checkStorageFile(named) };
  }
  if (await stopped(stop)) return;
  const metrics = new AuthMetrics();
  const backend = metrics.meter(await openStorage(storage, log));
  log.info("storage open", { storage: describeStorage(storage) });
  try {
    const ctx = await bootstrapCluster(backend, {
      clusterName: config.clusterName,
      log,
      version: denoJson.version,
    });
    if (await stopped(stop)) return;
    if (storage.kind === "postgres") await makeDataDir();
    await ensureAdminIdentity(ctx, join(dataDir, ADMIN_IDENTITY_FILE), log);
    if (await stopped(stop)) return;

    // The server certificate is issued afresh at every start, at every host
    // CA phase that changes the serving key and at two thirds of its lifetime,
    // and never stored, unless the operator brings one from their own PKI.
    const names = serverCertificateNames({
      listenHost: config.listen.host,
      publicHosts: config.publicAddrs.map((a) => a.host),
      hostname: Deno.hostname(),
    });
    const ownCertificate = async () => {
      const issuedAt = ctx.now().getTime();
      const c = await issueServerCertificate(ctx, { ...names, ttlMs: config.tlsCertTtlMs });
      const renewAt = serverCertificateRenewAt(issuedAt, config.tlsCertTtlMs);
      return { tls: { cert: c.certPem, key: c.keyPem }, renewAt };
    };
    const own = config.insecureNoTls || config.tlsFiles ? undefined : await ownCertificate();
    const tls = own?.tls ?? config.tlsFiles;
    // Moved on only once a swap succeeded: a failed renewal is tried again at the next tick.
    let renewAt = own?.renewAt ?? Infinity;
    const swapOwnCertificate = async () => {
      const next = await ownCertificate();
      server.swapTls(next.tls);
      renewAt = next.renewAt;
    };

    // A missing console folder (a stripped install) leaves /web/ unserved, not the service down.
    const consoleAssets = await loadConsoleAssets().catch((error) => {
      log.warn("fleet console files not found; /web/ is not served", { error: String(error) });
      return undefined;
    });
    if (await stopped(stop)) return;
    const app = createApp(ctx, {
      webOrigins: config.webOrigins,
      rateLimit: config.rateLimit,
      ...(consoleAssets ? { consoleAssets } : {}),
    });
    // With TLS or behind a PROXY protocol balancer, Deno.serve listens on a
    // Unix socket in a private directory behind a front on --listen (see serve.ts).
    const server = await serveService({ fetch: metrics.timeRequests(app.fetch) }, {
      hostname: config.listen.host,
      port: config.listen.port,
      ...(tls ? { tls } : {}),
      proxyFrom: config.proxyFrom,
      socketDir,
      log,
      front: { ...config.connections, onEvent: (event) => metrics.front(event) },
    });
    const url = server.url;
    const adminIdentityPath = join(dataDir, ADMIN_IDENTITY_FILE);
    const watcher = startCaWatcher(ctx, {
      onChange: async (previous) => {
        if (own && servingKeyChanged(previous, ctx.cas)) {
          await swapOwnCertificate();
          log.info("serving a TLS certificate from the host CA's new serving key", {
            phase: ctx.cas.host.rotation.phase,
          });
        }
        await ensureAdminIdentity(ctx, adminIdentityPath, log);
      },
      onTick: async () => {
        if (!own || ctx.now().getTime() < renewAt) return;
        await swapOwnCertificate();
        log.info("renewed the service's TLS certificate before it expires", {
          next_renewal: new Date(renewAt).toISOString(),
        });
      },
    });
    const diag = config.diagAddr
      ? serveApp(createDiagApp(ctx, metrics), {
        hostname: config.diagAddr.host,
        port: config.diagAddr.port,
        log,
      })
      : undefined;
    // At once if a stop came while the servers started: they stop before any startup line.
    const stopServers = () => {
      watcher.stop();
      server.shutdown();
      diag?.shutdown();
    };
    if (stop.aborted) stopServers();
    else stop.addEventListener("abort", stopServers, { once: true });
    if (!stop.aborted) {
      await announce(config, log, dataDir, url, diag?.url, await caPin(ctx.cas.host));
    }
    await server.finished;
    await diag?.finished;
    await watcher.stop();
  } finally {
    await backend.close();
  }
}

/**
 * The service's address in the data directory, and the startup lines;
 * whoever reads them may signal at once (the listeners are in).
 */
async function announce(
  config: StartConfig,
  log: Logger,
  dataDir: string,
  url: string,
  diagUrl: string | undefined,
  pin: string,
): Promise<void> {
  await writeFileAtomic(join(dataDir, AUTH_SERVER_FILE), `${url}\n`, { mode: 0o600 });
  if (diagUrl) console.log(`Keybound auth diagnostics listening on ${diagUrl}`);
  console.log(`Keybound auth service listening on ${url}`);
  if (config.proxyFrom.length) {
    log.info("PROXY protocol v2 required from", { balancers: config.proxyFrom });
  }
  console.log(`CA pin ${pin}`);
  if (config.insecureNoTls) log.warn("serving plain HTTP (--insecure-no-tls)");
  if (config.webOrigins.length > 0) {
    log.info("browser origins allowed", { origins: config.webOrigins });
  }
}

/** Runs the CLI; returns the process exit code. Started by ./entry/auth.ts. */
export async function main(args: string[]): Promise<number> {
  let config;
  try {
    config = parseStartArgs(args);
  } catch (err) {
    if (!isKeyboundError(err)) throw err;
    console.error(errorLineOf(AUTH.name, err));
    return 2;
  }
  if ("help" in config) {
    console.log(config.help);
    return config.exitCode;
  }
  if ("adminIdentity" in config) return await adminIdentity(config.adminIdentity);
  const log = createLogger({ component: "auth", format: config.logFormat });
  try {
    await start(config, log);
    return 0;
  } catch (err) {
    console.error(errorLineOf(AUTH.name, err));
    return 1;
  }
}
