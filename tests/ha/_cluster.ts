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
import { PostgresBackend } from "../../runtime-adapters/deno/postgres/backend.ts";
import { parsePostgresUrl } from "../../runtime-adapters/deno/postgres/url.ts";
import { bootstrapCluster, type ServerContext } from "../../src/server/mod.ts";
import { silentLogger } from "../../src/util/log.ts";
import type { Harness } from "../server/_join_fixture.ts";
import { freePort } from "../tbot/_harness.ts";
import { HAPROXY, type Haproxy, startHaproxy } from "./_haproxy.ts";
import { PG_PASSWORD, type PostgresServer, startPostgres } from "./_postgres.ts";

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
}

/** A running HA deployment. */
export interface HaCluster extends AsyncDisposable {
  /** The database server. */
  pg: PostgresServer;
  /** `--storage` URL. */
  storage: string;
  /** Scratch directory (removed at the end). */
  dir: string;
  /** The auth processes. */
  instances: Instance[];
  /** `127.0.0.1:PORT` of HAProxy (or of instance 0 without it). */
  address: string;
  /** The host CA pin every instance printed. */
  pin: string;
  /** A server context of the test process on the shared database. */
  ctx: ServerContext;
  /** Per-server total sessions from HAProxy's stats socket. */
  sessions(): Promise<Record<string, number>>;
  /** `kill -9` of an instance. */
  kill9(index: number): void;
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
  const dir = await Deno.makeTempDir({ prefix: "keybound-ha-" });
  const cleanup: (() => Promise<unknown>)[] = [];
  const dispose = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
    await pg[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await pg.createDatabase("keybound");
    const storage = pg.url("keybound");
    const lbPort = o.haproxy === false ? 0 : freePort();
    // All processes start together against the empty database: one cluster must result.
    const instances = await Promise.all(Array.from({ length: n }, async (_, index) => {
      const dataDir = `${dir}/auth${index}`;
      const publicHost = `auth${index}.${CLUSTER}`;
      const proc = await spawnAuthService({
        dataDir,
        args: [
          "--cluster-name",
          CLUSTER,
          "--storage",
          storage,
          "--public-addr",
          `${publicHost}:443`,
          ...(lbPort ? ["--public-addr", `127.0.0.1:${lbPort}`] : []),
          "--diag-addr",
          "127.0.0.1:0",
          ...(o.proxyProtocol ? ["--proxy-protocol-from", "127.0.0.1"] : []),
        ],
        env: { PGPASSWORD: PG_PASSWORD },
        // Kept so a failing test can show what the instances said.
        captureLog: true,
      });
      const inst: Instance = { index, dataDir, publicHost, proc, alive: true };
      cleanup.push(async () => {
        if (inst.alive) await proc.stop();
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
      );
      cleanup.push(() => lb!.stop());
      address = lb.address;
    }
    const backend = await PostgresBackend.open({
      location: parsePostgresUrl(storage),
      password: PG_PASSWORD,
    });
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
      ctx,
      sessions() {
        if (!lb) throw new Error("no haproxy");
        return lb.sessions();
      },
      kill9(index) {
        Deno.kill(instances[index].proc.pid, "SIGKILL");
        instances[index].alive = false;
        cleanup.push(() => instances[index].proc.stop());
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
