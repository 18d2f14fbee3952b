/**
 * Full bound-keypair refresh joins (begin + challenge + signed continue +
 * one atomic commit) against one real auth process on loopback with the Deno
 * KV backend, from 1 and from 50 concurrent bots.
 *
 * @module
 */
import { joinBoundKeypair } from "../src/agent/join_client.ts";
import type { JoinResult } from "../src/agent/join_types.ts";
import { AdminApiClient } from "../src/cli/api_client.ts";
import { generateKeyPair, type KeyAlgorithm, type KeyPair } from "../src/crypto/keys.ts";
import { toAuthorizedKey } from "../src/crypto/ssh_wire.ts";
import { certificatesFromPem } from "../src/pki/mod.ts";
import { parseIdentityFile } from "../src/protocol/identity_file.ts";
import { AUTH_V8_FLAGS, spawnAuthService } from "../runtime-adapters/deno/auth_process.ts";
import { randomHex } from "../src/crypto/random.ts";
import type { BenchRow, BenchSection } from "./report.ts";
import { floorTotalMs, measureJoinFloor } from "./join_floor.ts";
import { type CapturedExchange, capturingFetch, measureTransportFloor } from "./join_transport.ts";
import { fmt, percentile, runConcurrent } from "./stats.ts";

/** A running auth process. */
export interface AuthProcess {
  /** Base URL. */
  url: string;
  /** Admin API client. */
  admin: AdminApiClient;
  /** Stops the process. */
  stop(): Promise<void>;
  /** PID, for RSS sampling. */
  pid: number;
}

/**
 * Starts `auth start` on plain HTTP loopback in `dataDir` and waits for its
 * banner. `denoFlags` go before the script (e.g. `--v8-flags=--prof` for a
 * CPU profile, written to `cwd`).
 */
export async function startAuth(
  dataDir: string,
  options: {
    denoFlags?: string[];
    cwd?: string;
    args?: string[];
    env?: Record<string, string>;
    /** The auth entry point to run (another checkout's, to compare); default this one's. */
    entry?: string;
  } = {},
): Promise<AuthProcess> {
  const { entry, ...spawn } = options;
  const auth = await spawnAuthService({
    dataDir,
    ...spawn,
    ...(entry
      ? {
        command: [
          Deno.execPath(),
          "run",
          "--unstable-kv",
          "-A",
          AUTH_V8_FLAGS,
          ...(options.denoFlags ?? []),
          entry,
        ],
      }
      : {}),
    // The benchmark measures joins from one loopback address, far above the
    // per-source rate limit a production service keeps.
    args: [
      "--cluster-name",
      "bench.local",
      "--insecure-no-tls",
      "--rate-limit",
      "1000000",
      "--rate-limit-burst",
      "1000000",
      ...(options.args ?? []),
    ],
  });
  const id = await parseIdentityFile(await Deno.readTextFile(`${dataDir}/admin-identity`));
  const admin = new AdminApiClient({
    baseUrl: auth.url,
    signer: { certDer: id.certDer, privateKey: id.privateKey },
  });
  return {
    url: auth.url,
    admin,
    pid: auth.pid,
    async stop() {
      await auth.stop();
    },
  };
}

/** A bot's client state across joins. */
interface BenchBot {
  token: string;
  subjectKey: KeyPair;
  boundKeys: Map<string, CryptoKey>;
  last: JoinResult;
}

/** `TYPE BASE64` of an authorized_keys line (the bench's own keys: no parsing needed). */
function rawBlob(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(" ");
}

function keyStore(bot: Pick<BenchBot, "boundKeys">) {
  return {
    findPrivateKey(authorizedKey: string) {
      return Promise.resolve(bot.boundKeys.get(rawBlob(authorizedKey)) ?? null);
    },
    async generateRotationKey() {
      const kp = await generateKeyPair("EdDSA");
      const pub = await toAuthorizedKey(kp.publicKey);
      bot.boundKeys.set(rawBlob(pub), kp.privateKey);
      return pub;
    },
  };
}

/**
 * Creates `count` bots with tokens and performs their first join
 * (registration secret); `subjectAlg` is the algorithm of their certificate key.
 */
export async function onboardBots(
  auth: AuthProcess,
  count: number,
  subjectAlg: KeyAlgorithm = "ES256",
  prefix = "bench",
): Promise<BenchBot[]> {
  await auth.admin.put({
    kind: "bot",
    version: "v1",
    metadata: { name: "bench" },
    spec: { roles: [], traits: [] },
  }, "upsert");
  const bots: BenchBot[] = [];
  for (let i = 0; i < count; i++) {
    const token = `${prefix}-${i}`;
    const secret = randomHex(16);
    await auth.admin.put({
      kind: "token",
      version: "v2",
      metadata: { name: token },
      spec: {
        roles: ["Bot"],
        bot_name: "bench",
        join_method: "bound_keypair",
        bound_keypair: {
          onboarding: { registration_secret: secret },
          recovery: { limit: 1, mode: "standard" },
        },
      },
    }, "upsert");
    const partial = { boundKeys: new Map<string, CryptoKey>() };
    const subjectKey = await generateKeyPair(subjectAlg);
    const last = await joinBoundKeypair({
      baseUrl: auth.url,
      tokenName: token,
      subjectKey,
      ttlSeconds: 3600,
      initialJoinSecret: secret,
      keyStore: keyStore(partial),
    });
    bots.push({ token, subjectKey, boundKeys: partial.boundKeys, last });
  }
  return bots;
}

/** One refresh join (case D) for `bot`, updating its state (`fetchFn`: the transport, if not `fetch`). */
export async function refresh(
  auth: AuthProcess,
  bot: BenchBot,
  fetchFn?: typeof fetch,
): Promise<void> {
  const certDer = certificatesFromPem(bot.last.certificates.tls_cert)[0];
  bot.last = await joinBoundKeypair({
    baseUrl: auth.url,
    ...(fetchFn ? { fetch: fetchFn } : {}),
    tokenName: bot.token,
    subjectKey: bot.subjectKey,
    ttlSeconds: 3600,
    previousJoinState: bot.last.bound_keypair.join_state,
    identity: { certDer, privateKey: bot.subjectKey.privateKey },
    keyStore: keyStore(bot),
  });
}

/**
 * CPU seconds (user + system) a process has used so far, from
 * `/proc/<pid>/stat`; null where there is no procfs. Linux reports in clock
 * ticks of 1/100 s.
 */
export async function cpuSeconds(pid: number | "self"): Promise<number | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // The command name (field 2) may contain spaces; fields after it are fixed.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * Milliseconds each thread of a process has spent so far runnable but
 * without a CPU (the run delay of `/proc/<pid>/task/<tid>/schedstat`), by
 * thread id; null where there is no procfs. On a shared machine this is the
 * part of a join's latency that other work takes.
 */
export async function runnableWaitMs(pid: number | "self"): Promise<Map<string, number> | null> {
  try {
    const byThread = new Map<string, number>();
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
      try {
        const stat = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/schedstat`);
        byThread.set(t.name, Number(stat.split(" ")[1]) / 1e6);
      } catch {
        // the thread ended
      }
    }
    return byThread;
  } catch {
    return null;
  }
}

/**
 * The run delay threads gained from `before` to `after`, summed: a thread
 * that started in between counts whole, one that ended counts nothing. A
 * difference of sums instead lost every past wait of a thread that ended
 * (review1 N3: −14 s when Deno's worker pool shrank).
 */
export function waitGained(before: Map<string, number>, after: Map<string, number>): number {
  let total = 0;
  for (const [tid, ms] of after) total += ms - (before.get(tid) ?? 0);
  return total;
}

/** Result of {@linkcode measureRefreshJoins}. */
export interface JoinMeasurement {
  /** Joins per second. */
  rate: number;
  /** Median latency, ms. */
  p50: number;
  /** 99th percentile latency, ms. */
  p99: number;
  /** Auth process CPU per join, ms (null without procfs). */
  serverCpuMs: number | null;
  /** Benchmark (client) process CPU per join, ms (null without procfs). */
  clientCpuMs: number | null;
  /**
   * Per join, ms the threads of both processes waited runnable for a CPU
   * ({@linkcode runnableWaitMs}; null without procfs). Threads overlap, so
   * this is not all on a join's path. It counts other processes' load and
   * also the two processes' own threads competing for the CPUs (a `continue`
   * hands up to six operations to other threads at once), so it is not zero
   * on an idle machine; compare runs by it.
   */
  waitedMs: number | null;
}

/** Runs `total` refresh joins spread over `bots` with one join in flight per bot. */
export async function measureRefreshJoins(
  auth: AuthProcess,
  bots: BenchBot[],
  total: number,
): Promise<JoinMeasurement> {
  const [server0, client0, wait0] = await Promise.all([
    cpuSeconds(auth.pid),
    cpuSeconds("self"),
    bothWaited(auth.pid),
  ]);
  // A bot's joins are sequential (each needs the previous certificate), so
  // worker w always drives bot w.
  const { latencies, wallMs } = await runConcurrent(
    total,
    bots.length,
    (_i, worker) => refresh(auth, bots[worker]),
  );
  const [server1, client1, wait1] = await Promise.all([
    cpuSeconds(auth.pid),
    cpuSeconds("self"),
    bothWaited(auth.pid),
  ]);
  const perJoin = (a: number | null, b: number | null) =>
    a === null || b === null ? null : (1000 * (b - a)) / total;
  return {
    rate: total / (wallMs / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    serverCpuMs: perJoin(server0, server1),
    clientCpuMs: perJoin(client0, client1),
    waitedMs: wait0 === null || wait1 === null
      ? null
      : (waitGained(wait0[0], wait1[0]) + waitGained(wait0[1], wait1[1])) / total,
  };
}

/** {@linkcode runnableWaitMs} of the auth process and of this one. */
async function bothWaited(
  pid: number,
): Promise<[Map<string, number>, Map<string, number>] | null> {
  const [a, b] = await Promise.all([runnableWaitMs(pid), runnableWaitMs("self")]);
  return a === null || b === null ? null : [a, b];
}

/**
 * The bench bots' certificate key: tbot's (`certificateKeyAlgorithmFor`)
 * when no `identity` output copies the bot's certificate.
 */
export const BENCH_CERTIFICATE_KEY: KeyAlgorithm = "EdDSA";

/** Keys this section publishes in `BenchRun.values`. */
export const JOIN_KEYS = {
  rateAt1: "join.rate.1",
  p50At1: "join.p50.1",
  rateAt50: "join.rate.50",
  p50At50: "join.p50.50",
  serverCpuAt1: "join.server_cpu.1",
  serverCpuAt50: "join.server_cpu.50",
  floor: "join.crypto_floor",
  transportAt1: "join.transport_cpu.1",
  transportAt50: "join.transport_cpu.50",
  transportP50At1: "join.transport_p50.1",
} as const;

/** Sizes of {@linkcode joinSection}. */
export interface JoinSizes {
  /** Bots onboarded (the most concurrent level). */
  bots: number;
  /** Warm-up refreshes per bot, not measured. */
  warmup: number;
  /** Measured refreshes from one bot. */
  single: number;
  /** Measured refreshes spread over all bots. */
  concurrent: number;
}

/**
 * The join section: one `auth start --insecure-no-tls` process on loopback
 * with its Deno KV file in the run's work directory; refresh joins from 1
 * bot, then from `bots` bots at once.
 */
export function joinSection(
  sizes: JoinSizes = { bots: 50, warmup: 2, single: 300, concurrent: 2000 },
): BenchSection {
  return {
    id: "join",
    title:
      `bound-keypair refresh joins, one auth process, Deno KV, plain HTTP loopback, ${BENCH_CERTIFICATE_KEY} certificate keys`,
    async run(run) {
      const dataDir = `${run.workDir}/auth`;
      await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
      const auth = await startAuth(dataDir);
      try {
        run.log(`join: onboarding ${sizes.bots} bots`);
        const bots = await onboardBots(auth, sizes.bots, BENCH_CERTIFICATE_KEY);
        for (const bot of bots) {
          for (let i = 0; i < sizes.warmup; i++) await refresh(auth, bot);
        }
        run.log(`join: ${sizes.single} refreshes from 1 bot`);
        const one = await measureRefreshJoins(auth, bots.slice(0, 1), sizes.single);
        run.log(`join: ${sizes.concurrent} refreshes from ${sizes.bots} bots`);
        const many = await measureRefreshJoins(auth, bots, sizes.concurrent);
        run.values.set(JOIN_KEYS.rateAt1, one.rate);
        run.values.set(JOIN_KEYS.p50At1, one.p50);
        run.values.set(JOIN_KEYS.rateAt50, many.rate);
        run.values.set(JOIN_KEYS.p50At50, many.p50);
        if (one.serverCpuMs !== null) run.values.set(JOIN_KEYS.serverCpuAt1, one.serverCpuMs);
        if (many.serverCpuMs !== null) run.values.set(JOIN_KEYS.serverCpuAt50, many.serverCpuMs);
        run.log("join: the crypto floor of one refresh, in this process");
        const floor = await measureJoinFloor(BENCH_CERTIFICATE_KEY);
        run.values.set(JOIN_KEYS.floor, floorTotalMs(floor));
        run.log("join: the transport and storage floor (bare Deno.serve + Deno KV, no crypto)");
        const exchanges: CapturedExchange[] = [];
        await refresh(auth, bots[0], capturingFetch(exchanges));
        const transport = [
          ["1 in flight", await measureTransportFloor(exchanges, run.workDir, sizes.single, 1)],
          [
            `${sizes.bots} in flight`,
            await measureTransportFloor(exchanges, run.workDir, sizes.concurrent, sizes.bots),
          ],
        ] as const;
        run.values.set(JOIN_KEYS.transportAt1, transport[0][1].cpuMs);
        run.values.set(JOIN_KEYS.transportAt50, transport[1][1].cpuMs);
        run.values.set(JOIN_KEYS.transportP50At1, transport[0][1].p50);
        const rows: BenchRow[] = [];
        for (
          const [label, m, n] of [["1 bot", one, sizes.single], [
            `${sizes.bots} bots`,
            many,
            sizes.concurrent,
          ]] as const
        ) {
          rows.push(
            {
              metric: `refresh joins/s (${label})`,
              value: fmt(m.rate, 1),
              unit: "joins/s",
              note: `${n} joins`,
            },
            { metric: `refresh p50 (${label})`, value: fmt(m.p50, 2), unit: "ms" },
            { metric: `refresh p99 (${label})`, value: fmt(m.p99, 2), unit: "ms" },
            {
              metric: `auth process CPU per join (${label})`,
              value: m.serverCpuMs === null ? "n/a" : fmt(m.serverCpuMs, 2),
              unit: "ms",
              note: "user+sys, /proc",
            },
            {
              metric: `client CPU per join (${label})`,
              value: m.clientCpuMs === null ? "n/a" : fmt(m.clientCpuMs, 2),
              unit: "ms",
              note: "bench process",
            },
            {
              metric: `threads waiting for a CPU per join (${label})`,
              value: m.waitedMs === null ? "n/a" : fmt(m.waitedMs, 2),
              unit: "ms",
              note:
                "auth + bench processes, schedstat run delay: CPU contention, theirs and others'",
            },
          );
        }
        for (const op of floor) {
          rows.push({
            metric: `floor: ${op.name}`,
            value: fmt(op.cpuMs, 3),
            unit: "ms CPU",
            note: `x${op.count} per refresh`,
          });
        }
        rows.push({
          metric: "crypto floor of one refresh (sum)",
          value: fmt(floorTotalMs(floor), 2),
          unit: "ms CPU",
          note: "the server's crypto for one refresh, measured in this process",
        });
        for (const [label, t] of transport) {
          rows.push({
            metric: `transport+storage floor per refresh (${label})`,
            value: fmt(t.cpuMs, 2),
            unit: "ms CPU",
            note: `bare Deno.serve + Deno KV: the refresh's two requests (real bodies), ` +
              `7 point reads, its commit; no crypto, no hono/zod; p50 ${fmt(t.p50, 2)} ms`,
          });
        }
        return rows;
      } finally {
        await auth.stop();
      }
    },
  };
}
