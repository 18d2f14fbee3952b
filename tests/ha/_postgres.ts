/**
 * A real PostgreSQL server as a test fixture: `initdb` into a temporary
 * directory, `pg_ctl start` on a free loopback port with its socket in that
 * directory, and everything removed afterwards. initdb refuses to run as
 * root, so under root the server runs as the `postgres` system user.
 *
 * pg_ctl detaches the server, so a test process that dies without disposing
 * it (SIGKILL, a crash, a CI job cancelled) would leave it running. A
 * watchdog shell, started beside each server in a session of its own, reads
 * its stdin until the test process's end of the pipe closes — however that
 * process ends — then stops the server and removes its directory. And the
 * first start in a process sweeps what a watchdog could not: directories
 * whose `owner` file names a process that is gone (_watchdog.ts).
 *
 * A missing server is a reason to ignore the tests that need it, except in
 * CI (`CI=true`), where `.ci/run` installs it and its absence is a failure.
 *
 * @module
 */
import { freePort } from "../tbot/_harness.ts";
import { issueServerCert } from "../_openssl_pki.ts";
import type { Sql } from "postgres";
import { openPool } from "../../runtime-adapters/deno/postgres/pool.ts";
import { PostgresBackend } from "../../runtime-adapters/deno/postgres/backend.ts";
import { parsePostgresUrl } from "../../runtime-adapters/deno/postgres/url.ts";
import type { Logger } from "../../src/util/log.ts";
import { waitUntil } from "../_wait.ts";
import { claimDir, endWatchdog, startWatchdog, sweepDirs } from "./_watchdog.ts";

const PG_ROOT = "/usr/lib/postgresql";
const RUN_AS = "postgres";
/** Prefix of the fixture's temporary directories (the sweep recognises them by it). */
const DIR_PREFIX = "keybound-pg-";

/**
 * sh: stops the server whose data directory is `$1/data`, if one runs (the
 * pid file's process must be a postgres started on that directory: a stale
 * file's pid may belong to anything by now), then removes `$1`. SIGQUIT is
 * PostgreSQL's immediate shutdown; SIGKILL after 30 s.
 */
const STOP_AND_REMOVE = `
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
ours() { tr '\\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $1/data "; }
if [ -n "$pid" ] && ours "$1"; then
  kill -QUIT "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  # Only if it outlived the wait, and only if the pid is still that server's: once it is
  # gone the pid may be reused by any process (tests run as root).
  if [ $i -ge 300 ] && ours "$1"; then kill -KILL "$pid" 2>/dev/null; fi
fi
rm -rf -- "$1"
`;

export { processIdentity } from "./_watchdog.ts";

/** The role the fixture creates; its password is {@linkcode PG_PASSWORD}. */
export const PG_USER = "keybound";
/** Password of {@linkcode PG_USER} (scram-sha-256 over TCP). */
export const PG_PASSWORD = "fixture-secret-not-for-production";
/** The `application_name` of {@linkcode PostgresServer.client}'s connections. */
export const TEST_APPLICATION = "keybound-test";

/** Directory of the newest installed PostgreSQL's binaries, or null. */
function findBinDir(): string | null {
  let versions: number[] = [];
  try {
    versions = [...Deno.readDirSync(PG_ROOT)].map((e) => Number(e.name)).filter((n) => n >= 13);
  } catch {
    return null;
  }
  for (const v of versions.sort((a, b) => b - a)) {
    const dir = `${PG_ROOT}/${v}/bin`;
    try {
      Deno.statSync(`${dir}/initdb`);
      return dir;
    } catch { /* try the next */ }
  }
  return null;
}

const BIN_DIR = findBinDir();
const IS_ROOT = Deno.uid() === 0;

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export const postgresMissing: string | undefined = BIN_DIR === null
  ? `no PostgreSQL server binaries under ${PG_ROOT} (apt-get install postgresql)`
  : IS_ROOT && !userExists(RUN_AS)
  ? `running as root and no "${RUN_AS}" user to run initdb as`
  : undefined;

if (postgresMissing && Deno.env.get("CI") === "true") {
  throw new Error(`CI must provide PostgreSQL: ${postgresMissing}`);
}

function userExists(name: string): boolean {
  try {
    return Deno.readTextFileSync("/etc/passwd").split("\n").some((l) => l.startsWith(`${name}:`));
  } catch {
    return false;
  }
}

async function run(cmd: string[], what: string): Promise<string> {
  const [program, ...args] = IS_ROOT ? ["runuser", "-u", RUN_AS, "--", ...cmd] : cmd;
  const out = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${what} failed (exit ${out.code}): ${text.trim()}`);
  return text;
}

/** A running PostgreSQL server owned by a test. */
export interface PostgresServer extends AsyncDisposable {
  /** Loopback TCP port. */
  port: number;
  /** With `tls`: the directory holding `ca.crt` (the CA that signed the server certificate). */
  tlsDir?: string;
  /**
   * With `tls`: replaces the server certificate with one from the same CA
   * for `san` (an openssl subjectAltName value) and reloads the server.
   */
  reissueCertificate?(san: string): Promise<void>;
  /** `postgres://keybound@127.0.0.1:PORT/DB?sslmode=disable` for database `db`. */
  url(db: string): string;
  /** Creates an empty database named `name` (letters, digits, `_`). */
  createDatabase(name: string): Promise<void>;
  /**
   * A driver client of database `db` as {@linkcode PG_USER}, built as the
   * backend builds its pools (never `postgres()` directly: see pool.ts), its
   * sessions named {@linkcode TEST_APPLICATION}. The caller ends it.
   */
  client(db: string, o?: { max?: number }): Sql;
  /**
   * A {@linkcode PostgresBackend} on database `db` as {@linkcode PG_USER}
   * (see {@linkcode openBackend}); `port` reaches it through something
   * listening on 127.0.0.1 in front of this server (a proxy). The caller
   * closes it (`await using` does).
   */
  backend(db: string, o?: BackendOptions): Promise<PostgresBackend>;
  /** Runs SQL in database `db` as the fixture's superuser; returns psql's output. */
  psql(db: string, sql: string): Promise<string>;
  /**
   * Takes ACCESS EXCLUSIVE locks on `tables` in database `db` in a psql
   * session of the superuser that keeps its transaction open, so every
   * statement reading them waits; resolves once they are held. Disposing
   * ends the session (so does stopping the server).
   */
  lock(db: string, tables: string[]): Promise<AsyncDisposable>;
  /**
   * As {@linkcode lock}, with `sql` (e.g. `SELECT … FOR UPDATE`) in that open
   * transaction instead of the table locks.
   */
  hold(db: string, sql: string): Promise<AsyncDisposable>;
  /** Stops the server (fast shutdown); data is kept. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** The fixture's directory (data, socket, log). */
  dir: string;
  /** Pid of the watchdog that stops the server if this process ends without disposing it. */
  watchdogPid: number;
  /** Pid of the running server (postmaster), or undefined while it is stopped. */
  serverPid(): number | undefined;
  /** Stops the server and removes its directory. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode PostgresServer.backend}. */
export interface BackendOptions {
  /** The port on 127.0.0.1 to connect to (default: the server's own). */
  port?: number;
  /** The URL's sslmode (default `disable`). */
  sslmode?: string;
  /** Default {@linkcode PG_PASSWORD}. */
  password?: string;
  /** Where the backend says connection trouble. */
  log?: Logger;
}

/**
 * The one way a test or bench opens a {@linkcode PostgresBackend}: on the
 * `postgres://` `url`, with the fixture's password unless told otherwise.
 */
export function openBackend(
  url: string,
  o: { password?: string; log?: Logger } = {},
): Promise<PostgresBackend> {
  return PostgresBackend.open({
    location: parsePostgresUrl(url),
    password: o.password ?? PG_PASSWORD,
    ...(o.log ? { log: o.log } : {}),
  });
}

/** Options of {@linkcode startPostgres}. */
export interface PostgresOptions {
  /** Serve TLS with a certificate for IP 127.0.0.1 from a fresh test CA. */
  tls?: boolean;
}

/** The uid fixture directories belong to (the server's user). */
async function serverUid(): Promise<number> {
  return IS_ROOT ? Number(await run(["id", "-u"], "id -u")) : Deno.uid()!;
}

/** The pid in `dir`'s postmaster.pid if that process runs postgres on `dir`'s data. */
function runningServer(dir: string): number | undefined {
  try {
    const pid = Number(Deno.readTextFileSync(`${dir}/data/postmaster.pid`).split("\n")[0]);
    const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    const d = cmdline.indexOf("-D");
    return d >= 0 && cmdline[d + 1] === `${dir}/data` ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stops and removes what earlier test processes left in `tmp` (default: the
 * directory Deno makes temporary directories in): each fixture directory
 * (name prefix, a real directory of the server's user) whose owner file
 * names a process that is gone; one without an owner file only when no
 * server runs in it and it is over an hour old (its process may still live).
 * Returns the directories removed.
 */
export async function sweepOrphans(tmp?: string): Promise<string[]> {
  return sweepDirs({
    parent: tmp ?? tmpParent ?? "/tmp",
    prefix: DIR_PREFIX,
    uids: [await serverUid()],
    stop: STOP_AND_REMOVE,
    busy: (dir) => runningServer(dir) !== undefined,
  });
}

/** Where this process's fixture directories go, learnt from the first one. */
let tmpParent: string | undefined;
let swept: Promise<unknown> | undefined;

/** Starts a fresh PostgreSQL server. */
export async function startPostgres(o: PostgresOptions = {}): Promise<PostgresServer> {
  if (BIN_DIR === null || postgresMissing) throw new Error(postgresMissing);
  const dir = await Deno.makeTempDir({ prefix: DIR_PREFIX });
  await claimDir(dir);
  tmpParent ??= dir.slice(0, dir.lastIndexOf("/"));
  await (swept ??= sweepOrphans().catch(() => {}));
  const data = `${dir}/data`;
  const tlsDir = o.tls ? `${dir}/tls` : undefined;
  let owner: { uid: number; gid: number } | undefined;
  const chownTls = async () => {
    if (!tlsDir || !owner) return;
    for (const f of ["server.crt", "server.key"]) {
      await Deno.chown(`${tlsDir}/${f}`, owner.uid, owner.gid);
    }
  };
  let port = 0;
  const start = async () => {
    await run([
      `${BIN_DIR}/pg_ctl`,
      "-D",
      data,
      "-l",
      `${dir}/server.log`,
      "-w",
      "-t",
      "60",
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off ` +
      "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300" +
      (tlsDir
        ? ` -c ssl=on -c ssl_cert_file=${tlsDir}/server.crt -c ssl_key_file=${tlsDir}/server.key`
        : ""),
      "start",
    ], "pg_ctl start");
  };
  const watchdog = startWatchdog(dir, STOP_AND_REMOVE);
  try {
    if (tlsDir) {
      await Deno.mkdir(tlsDir, { mode: 0o755 });
      await issueServerCert(tlsDir, "IP:127.0.0.1");
    }
    const pwFile = `${dir}/pwfile`;
    await Deno.writeTextFile(pwFile, PG_PASSWORD + "\n");
    if (IS_ROOT) {
      const uid = await serverUid();
      const gid = Number(await run(["id", "-g"], "id -g"));
      await Deno.chown(dir, uid, gid);
      owner = { uid, gid };
      await chownTls();
      await Deno.chown(pwFile, uid, gid);
    }
    await Deno.chmod(dir, 0o700);
    await run([
      `${BIN_DIR}/initdb`,
      "-D",
      data,
      "-U",
      PG_USER,
      `--pwfile=${pwFile}`,
      "--auth-host=scram-sha-256",
      "--auth-local=trust",
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync",
    ], "initdb");
    await Deno.remove(pwFile);
    for (let attempt = 1;; attempt++) {
      port = freePort();
      try {
        await start();
        break;
      } catch (err) {
        // Another process may have taken the port between probe and start.
        if (attempt >= 3) throw err;
      }
    }
  } catch (err) {
    await endWatchdog(watchdog); // stops what started, removes the directory
    throw err;
  }
  const stop = () => run([`${BIN_DIR}/pg_ctl`, "-D", data, "-m", "fast", "-w", "stop"], "stop");
  let running = true;
  const psqlArgs = (db: string) => [
    `${BIN_DIR}/psql`,
    "-h",
    dir,
    "-p",
    String(port),
    "-U",
    PG_USER,
    "-d",
    db,
    "-qAtX",
  ];
  const psql = (db: string, sql: string) => run([...psqlArgs(db), "-c", sql], "psql");
  const hold = async (db: string, sql: string): Promise<AsyncDisposable> => {
    const [program, ...args] = IS_ROOT
      ? ["runuser", "-u", RUN_AS, "--", ...psqlArgs(db)]
      : psqlArgs(db);
    const child = new Deno.Command(program, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const input = child.stdin.getWriter();
    const output = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const end = async () => {
      await input.close().catch(() => {});
      await output.cancel().catch(() => {});
      await child.status;
    };
    await input.write(new TextEncoder().encode(`BEGIN; ${sql}; SELECT 'held';\n`));
    let said = "";
    while (!said.includes("held")) {
      const { value, done } = await output.read();
      if (done) {
        await end();
        throw new Error(`psql could not hold: ${sql}`);
      }
      said += value;
    }
    return { [Symbol.asyncDispose]: end };
  };
  return {
    port,
    url: (db) => `postgres://${PG_USER}@127.0.0.1:${port}/${db}?sslmode=disable`,
    ...(tlsDir
      ? {
        tlsDir,
        async reissueCertificate(san: string) {
          await issueServerCert(tlsDir, san);
          await chownTls();
          await psql("postgres", "SELECT pg_reload_conf()");
          await new Promise((r) => setTimeout(r, 300));
        },
      }
      : {}),
    client: (db, c = {}) =>
      openPool({
        host: "127.0.0.1",
        port,
        database: db,
        user: PG_USER,
        password: PG_PASSWORD,
        max: c.max ?? 1,
        session: { application_name: TEST_APPLICATION },
      }),
    backend: (db, b = {}) =>
      openBackend(
        `postgres://${PG_USER}@127.0.0.1:${b.port ?? port}/${db}?sslmode=${b.sslmode ?? "disable"}`,
        b,
      ),
    psql,
    hold,
    lock: (db, tables) => hold(db, `LOCK TABLE ${tables.join(", ")} IN ACCESS EXCLUSIVE MODE`),
    async createDatabase(name) {
      if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`bad database name ${name}`);
      await psql("postgres", `CREATE DATABASE ${name}`);
    },
    async stop() {
      await stop();
      running = false;
    },
    async start() {
      await start();
      running = true;
    },
    dir,
    watchdogPid: watchdog.pid,
    serverPid: () => runningServer(dir),
    async [Symbol.asyncDispose]() {
      try {
        if (running) {
          await run([`${BIN_DIR}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"], "stop");
        }
      } finally {
        await endWatchdog(watchdog); // removes the directory
      }
    },
  };
}

/** Resolves once at least `n` sessions named `application` wait on a lock. */
export function lockWaiters(
  pg: PostgresServer,
  n: number,
  application = "keybound-auth",
): Promise<void> {
  return waitUntil(
    async () => {
      const waiting = await pg.psql(
        "postgres",
        `SELECT count(*) FROM pg_stat_activity WHERE application_name = '${application}' ` +
          "AND wait_event_type = 'Lock'",
      );
      return Number(waiting.trim()) >= n;
    },
    `${n} connections of ${application} to wait on the locks`,
    { timeoutMs: 60_000, intervalMs: 50 },
  );
}

/**
 * Collects unhandled promise rejections while in scope (`using`): one would
 * end an auth process, and in a test it fails whichever test runs next; the
 * test that caused it names them instead.
 */
export function collectUnhandled(): { reasons: string[] } & Disposable {
  const reasons: string[] = [];
  const collect = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    reasons.push(String((e.reason as Error)?.stack ?? e.reason));
  };
  globalThis.addEventListener("unhandledrejection", collect);
  return {
    reasons,
    [Symbol.dispose]: () => globalThis.removeEventListener("unhandledrejection", collect),
  };
}
