/**
 * Several real auth processes on one real PostgreSQL, optionally behind a
 * real HAProxy (TCP mode, TLS passed through, health checks on each
 * instance's `/readyz`), all on 127.0.0.1 with free ports. The test process
 * also opens the shared database itself (as one more instance would) to seed
 * bots and tokens and to read what the instances wrote.
 *
 * @module
 */
import {
  type AuthServiceProcess,
  spawnAuthService,
} from "../../runtime-adapters/deno/auth_process.ts";
import { bootstrapCluster, type ServerContext } from "../../src/server/mod.ts";
import { PROXY_V2_SIGNATURE } from "../../src/server/proxy_protocol.ts";
import { silentLogger } from "../../src/util/log.ts";
import { type Harness, putBot, putToken, TestBot } from "../server/_join_fixture.ts";
import { assertEquals } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { freePort } from "../tbot/_harness.ts";
import { HAPROXY, type Haproxy, startHaproxy } from "./_haproxy.ts";
import { PG_PASSWORD, type PostgresServer, startPostgres } from "./_postgres.ts";
import { processDir } from "./_watchdog.ts";

/** The cluster name every instance is started with. */
export const CLUSTER = "ha.example";

/** One auth process. */
export interface Instance {
  /** Position in {@linkcode HaCluster.instances}. */
  index: number;
  /** Its `--data-dir`. */
  dataDir: string;
  /** Its own `--public-addr` host. */
  publicHost: string;
  /** The running process. */
  proc: AuthServiceProcess;
  /** False once killed or stopped. */
  alive: boolean;
  /** What the runs before a {@linkcode HaCluster.restart} logged. */
  earlierLog: string;
}

/** A running HA deployment. */
export interface HaCluster extends AsyncDisposable {
  /** The database server. */
  pg: PostgresServer;
  /** `--storage` URL. */
  storage: string;
  /** Scratch directory (removed at the end, and its processes ended: {@linkcode processDir}). */
  dir: string;
  /** The auth processes. */
  instances: Instance[];
  /** HAProxy's process, when there is one. */
  haproxyPid?: number;
  /** The pid of {@linkcode dir}'s watchdog. */
  watchdogPid: number;
  /** `127.0.0.1:PORT` of HAProxy (or of instance 0 without it). */
  address: string;
  /** The host CA pin every instance printed. */
  pin: string;
  /** The instances require a PROXY protocol v2 header from 127.0.0.1. */
  proxyProtocol: boolean;
  /** A server context of the test process on the shared database. */
  ctx: ServerContext;
  /** Per-server total sessions from HAProxy's stats socket. */
  sessions(): Promise<Record<string, number>>;
  /** `kill -9` of an instance. */
  kill9(index: number): void;
  /** Starts a killed instance again: same data directory, flags and ports (HAProxy's servers). */
  restart(index: number): Promise<void>;
}

/** Options of {@linkcode startHaCluster}. */
export interface HaOptions {
  /** Auth processes (default 3). */
  instances?: number;
  /** Put HAProxy in front (default true). */
  haproxy?: boolean;
  /** HAProxy sends PROXY protocol v2 and the instances require it from 127.0.0.1. */
  proxyProtocol?: boolean;
}

/** Starts PostgreSQL, N auth processes at once on the empty database, and HAProxy. */
export async function startHaCluster(o: HaOptions = {}): Promise<HaCluster> {
  const n = o.instances ?? 3;
  const pg = await startPostgres();
  // Ends with this process, however it ends, and everything running in it (the instances,
  // HAProxy) with it.
  const place = await processDir();
  const dir = place.dir;
  const cleanup: (() => Promise<unknown>)[] = [];
  const dispose = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
    await pg[Symbol.asyncDispose]();
    await place[Symbol.asyncDispose]();
  };
  try {
    await pg.createDatabase("keybound");
    const storage = pg.url("keybound");
    const lbPort = o.haproxy === false ? 0 : freePort();
    const spawn = (index: number, ports?: { listen: string; diag: string }) =>
      place.spawned(() =>
        spawnAuthService({
          dataDir: `${dir}/auth${index}`,
          ...(ports ? { listen: ports.listen } : {}),
          args: [
            "--cluster-name",
            CLUSTER,
            "--storage",
            storage,
            "--public-addr",
            `auth${index}.${CLUSTER}:443`,
            ...(lbPort ? ["--public-addr", `127.0.0.1:${lbPort}`] : []),
            "--diag-addr",
            ports?.diag ?? "127.0.0.1:0",
            ...(o.proxyProtocol ? ["--proxy-protocol-from", "127.0.0.1"] : []),
          ],
          env: { PGPASSWORD: PG_PASSWORD },
          // Kept so a failing test can show what the instances said.
          captureLog: true,
        })
      );
    // All processes start together against the empty database: one cluster must result.
    const instances = await Promise.all(Array.from({ length: n }, async (_, index) => {
      const proc = await spawn(index);
      const inst: Instance = {
        index,
        dataDir: `${dir}/auth${index}`,
        publicHost: `auth${index}.${CLUSTER}`,
        proc,
        alive: true,
        earlierLog: "",
      };
      cleanup.push(async () => {
        if (inst.alive) await inst.proc.stop();
      });
      return inst;
    }));
    let address = instances[0].proc.addr;
    let lb: Haproxy | undefined;
    if (o.haproxy !== false) {
      lb = await startHaproxy(
        dir,
        lbPort,
        instances.map((i) => ({
          name: `auth${i.index}`,
          addr: i.proc.addr,
          checkPort: Number(new URL(i.proc.diagUrl!).port),
          sendProxy: o.proxyProtocol,
        })),
        place.track,
      );
      cleanup.push(() => lb!.stop());
      address = lb.address;
    }
    const backend = await pg.backend("keybound");
    cleanup.push(() => backend.close());
    const ctx = await bootstrapCluster(backend, {
      clusterName: CLUSTER,
      log: silentLogger,
      version: "test",
    });
    const cluster: HaCluster = {
      pg,
      storage,
      dir,
      instances,
      address,
      pin: instances[0].proc.caPin,
      ...(lb ? { haproxyPid: lb.pid } : {}),
      watchdogPid: place.watchdogPid,
      proxyProtocol: o.proxyProtocol ?? false,
      ctx,
      sessions() {
        if (!lb) throw new Error("no haproxy");
        return lb.sessions();
      },
      kill9(index) {
        const { proc } = instances[index];
        Deno.kill(proc.pid, "SIGKILL");
        instances[index].alive = false;
        cleanup.push(() => proc.stop());
      },
      async restart(index) {
        const inst = instances[index];
        if (inst.alive) throw new Error(`instance ${index} is running`);
        await inst.proc.exited;
        inst.earlierLog += inst.proc.log();
        // The same ports: HAProxy's configuration names them, and its health check brings
        // the instance back once /readyz answers.
        inst.proc = await spawn(index, {
          listen: inst.proc.addr,
          diag: new URL(inst.proc.diagUrl!).host,
        });
        inst.alive = true;
      },
      [Symbol.asyncDispose]: dispose,
    };
    return cluster;
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Why HA tests cannot run here, or undefined. */
export function haMissing(pgMissing: string | undefined): string | undefined {
  if (pgMissing) return pgMissing;
  if (!HAPROXY) {
    if (Deno.env.get("CI") === "true") throw new Error("CI must provide haproxy");
    return "haproxy is not installed (apt-get install haproxy)";
  }
  return undefined;
}

/**
 * A fetch that opens a new TLS connection for every request, so HAProxy's
 * round robin sends consecutive requests to different instances (a pooled
 * client would keep one connection, hence one instance). `onResponse` runs
 * after each request.
 */
export function freshConnectionFetch(
  caPem: string,
  onResponse?: (url: string) => Promise<void>,
): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const client = Deno.createHttpClient({ caCerts: [caPem], poolMaxIdlePerHost: 0 });
    try {
      const res = await fetch(input, { ...init, client });
      const body = await res.arrayBuffer();
      await onResponse?.(String(input));
      return new Response(body, { status: res.status, headers: res.headers });
    } finally {
      client.close();
    }
  }) as typeof fetch;
}

/** A join-fixture harness whose joins go through HAProxy, on the shared database. */
export function harnessOf(c: HaCluster): Harness {
  return { baseUrl: `https://${c.address}`, ctx: c.ctx } as unknown as Harness;
}

/** The host CA certificate, PEM. */
export function hostCaPem(c: HaCluster): string {
  return c.ctx.cas.host.tls!.certPem;
}

/**
 * True if a TLS handshake straight to `inst` (after a PROXY v2 LOCAL header
 * when the cluster requires one) verifies its certificate, for its own
 * public name, under `caPem` alone. A refused or reset connection is false.
 */
export async function servesFrom(c: HaCluster, inst: Instance, caPem: string): Promise<boolean> {
  const [hostname, port] = inst.proc.addr.split(":");
  let conn: Deno.Conn | undefined;
  try {
    const tcp = await Deno.connect({ hostname, port: Number(port) });
    conn = tcp;
    // LOCAL: no client address follows (what a balancer's own health check sends).
    if (c.proxyProtocol) await tcp.write(Uint8Array.from([...PROXY_V2_SIGNATURE, 0x20, 0, 0, 0]));
    const tls = await Deno.startTls(tcp, { hostname: inst.publicHost, caCerts: [caPem] });
    conn = tls;
    await tls.handshake();
    return true;
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch { /* already closed */ }
  }
}

/** The sum of the samples of metric `name` whose labels include `labels`, from `/metrics` texts. */
export function metricTotal(texts: string[], name: string, labels = ""): number {
  return texts.flatMap((t) => t.split("\n"))
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .filter((l) => l.includes(labels))
    .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
}

/** An instance's diagnostics `/metrics` text, or "" while it is down. */
export async function instanceMetrics(inst: Instance): Promise<string> {
  if (!inst.alive) return "";
  try {
    return await (await fetch(`${inst.proc.diagUrl}/metrics`)).text();
  } catch {
    return "";
  }
}

/** The last `lines` lines each instance logged (earlier runs included), for a failing test. */
export function instanceLogTails(c: HaCluster, lines = 40): string {
  return c.instances.map((i) => {
    const tail = (i.earlierLog + i.proc.log()).trimEnd().split("\n").slice(-lines).join("\n");
    return `--- auth instance ${i.index}${i.alive ? "" : " (down)"} ---\n${tail}`;
  }).join("\n");
}

/** What {@linkcode startBotCluster} started; disposing stops it. */
export interface BotCluster extends AsyncDisposable {
  c: HaCluster;
  /** The one auth process. */
  inst: Instance;
  /** Enrolled, not joined yet. */
  bots: TestBot[];
  /** A new connection per request, trusting the host CA. */
  fetch: typeof fetch;
  /**
   * Each bot joins (tried again for up to 60 s: `after` names what it
   * follows), then the auth process must still be running.
   */
  everyBotJoins(after: string): Promise<void>;
}

/**
 * One auth process on PostgreSQL (no HAProxy) and `n` bots (`b0`…, tokens
 * `t0`… good for 100 joins, one EdDSA key each), for tests that break
 * PostgreSQL under their joins: the process must outlive that and serve
 * every bot after.
 */
export async function startBotCluster(n = 12): Promise<BotCluster> {
  const c = await startHaCluster({ instances: 1, haproxy: false });
  try {
    const [inst] = c.instances;
    let exitCode: number | undefined;
    inst.proc.exited.then((code) => (exitCode = code));
    const f = freshConnectionFetch(hostCaPem(c));
    const bots: TestBot[] = [];
    for (let i = 0; i < n; i++) {
      await putBot(c.ctx, `b${i}`);
      const bot = new TestBot(harnessOf(c), `t${i}`);
      const pub = await bot.keys.add("EdDSA");
      await putToken(c.ctx, `t${i}`, { botName: `b${i}`, limit: 100, initialPublicKey: pub });
      bots.push(bot);
    }
    return {
      c,
      inst,
      bots,
      fetch: f,
      async everyBotJoins(after) {
        for (const bot of bots) {
          await waitUntil(
            () => bot.join({ fetch: f }).then(() => true, () => false),
            `${bot.tokenName} to join after ${after}`,
            { timeoutMs: 60_000, intervalMs: 100 },
          );
        }
        assertEquals(exitCode, undefined, `the auth process exited: ${inst.proc.log()}`);
      },
      [Symbol.asyncDispose]: () => c[Symbol.asyncDispose](),
    };
  } catch (err) {
    await c[Symbol.asyncDispose]();
    throw err;
  }
}
