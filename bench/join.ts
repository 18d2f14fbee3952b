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
import {
  type CapturedExchange,
  capturingFetch,
  type FloorServer,
  measureTransportFloor,
  startFloorServer,
} from "./join_transport.ts";
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
 * With `roles`, the bots' bot has that many roles (each allowing one login),
 * which a join reads for its SSH principals; the bench's bots have none.
 */
export async function onboardBots(
  auth: AuthProcess,
  count: number,
  subjectAlg: KeyAlgorithm = "ES256",
  prefix = "bench",
  roles = 0,
): Promise<BenchBot[]> {
  const roleNames = Array.from({ length: roles }, (_, i) => `bench-role-${i}`);
  for (const [i, name] of roleNames.entries()) {
    await auth.admin.put({
      kind: "role",
      version: "v7",
      metadata: { name },
      spec: { allow: { logins: [`login-${i}`] } },
    }, "upsert");
  }
  await auth.admin.put({
    kind: "bot",
    version: "v1",
    metadata: { name: "bench" },
    spec: { roles: roleNames, traits: [] },
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

/** Raw totals of one block of refreshes, so blocks can be pooled. */
interface JoinBlock {
  /** Per refresh, ms. */
  latencies: number[];
  /** Wall time of the block, ms. */
  wallMs: number;
  /** Server process CPU, ms (null without procfs). */
  serverMs: number | null;
  /** This process's CPU, ms (null without procfs). */
  clientMs: number | null;
  /** Run delay gained by both processes' threads, ms (null without procfs). */
  waitedMs: number | null;
}

/** Runs `total` refreshes, `inFlight` at once (`fn(worker)`), against server process `pid`. */
async function measureBlock(
  pid: number,
  total: number,
  inFlight: number,
  fn: (worker: number) => Promise<void>,
  serverCpu: () => Promise<number | null> = () => cpuSeconds(pid),
): Promise<JoinBlock> {
  const [server0, client0, wait0] = await Promise.all([
    serverCpu(),
    cpuSeconds("self"),
    bothWaited(pid),
  ]);
  const { latencies, wallMs } = await runConcurrent(total, inFlight, (_i, worker) => fn(worker));
  const [server1, client1, wait1] = await Promise.all([
    serverCpu(),
    cpuSeconds("self"),
    bothWaited(pid),
  ]);
  const spent = (a: number | null, b: number | null) =>
    a === null || b === null ? null : 1000 * (b - a);
  return {
    latencies,
    wallMs,
    serverMs: spent(server0, server1),
    clientMs: spent(client0, client1),
    waitedMs: wait0 === null || wait1 === null
      ? null
      : waitGained(wait0[0], wait1[0]) + waitGained(wait0[1], wait1[1]),
  };
}

/** Pools blocks into one measurement. */
function pooled(blocks: JoinBlock[]): JoinMeasurement {
  const latencies = blocks.flatMap((b) => b.latencies);
  const total = latencies.length;
  const sum = (pick: (b: JoinBlock) => number | null) =>
    blocks.some((b) => pick(b) === null) ? null : blocks.reduce((s, b) => s + pick(b)!, 0) / total;
  return {
    rate: total / (blocks.reduce((s, b) => s + b.wallMs, 0) / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    serverCpuMs: sum((b) => b.serverMs),
    clientCpuMs: sum((b) => b.clientMs),
    waitedMs: sum((b) => b.waitedMs),
  };
}

/** Runs `total` refresh joins spread over `bots` with one join in flight per bot. */
export async function measureRefreshJoins(
  auth: AuthProcess,
  bots: BenchBot[],
  total: number,
): Promise<JoinMeasurement> {
  // A bot's joins are sequential (each needs the previous certificate), so
  // worker w always drives bot w.
  return pooled([
    await measureBlock(auth.pid, total, bots.length, (worker) => refresh(auth, bots[worker])),
  ]);
}

/**
 * `total` refreshes of one bot against the auth service and as many against
 * the protocol floor (`floor`, bench/join_transport.ts), in alternating
 * blocks of `block` (A B B A ...), so the machine's load weighs on both alike.
 */
export async function measureBesideFloor(
  auth: AuthProcess,
  bot: BenchBot,
  floor: FloorServer,
  total: number,
  block = 50,
): Promise<{ join: JoinMeasurement; floor: JoinMeasurement }> {
  const joins: JoinBlock[] = [];
  const floors: JoinBlock[] = [];
  const a = async (n: number) =>
    joins.push(await measureBlock(auth.pid, n, 1, () => refresh(auth, bot)));
  const b = async (n: number) =>
    floors.push(await measureBlock(floor.pid, n, 1, () => floor.refresh(0), floor.cpuSeconds));
  for (let done = 0, i = 0; done < total; done += block, i++) {
    const n = Math.min(block, total - done);
    for (const step of i % 2 === 0 ? [a, b] : [b, a]) await step(n);
  }
  return { join: pooled(joins), floor: pooled(floors) };
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
  protocolP50At1: "join.protocol_p50.1",
  protocolCpuAt1: "join.protocol_cpu.1",
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
        // One refresh recorded: the floors replay its requests, of the real sizes.
        const exchanges: CapturedExchange[] = [];
        await refresh(auth, bots[0], capturingFetch(exchanges));
        run.log(
          `join: ${sizes.single} refreshes from 1 bot, alternating blocks with the protocol floor`,
        );
        const protocolServer = await startFloorServer(exchanges, run.workDir, true);
        let one: JoinMeasurement;
        let protocol: JoinMeasurement;
        try {
          ({ join: one, floor: protocol } = await measureBesideFloor(
            auth,
            bots[0],
            protocolServer,
            sizes.single,
          ));
        } finally {
          await protocolServer.stop();
        }
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
        run.values.set(JOIN_KEYS.protocolP50At1, protocol.p50);
        if (protocol.serverCpuMs !== null) {
          run.values.set(JOIN_KEYS.protocolCpuAt1, protocol.serverCpuMs);
        }
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
        rows.push(
          {
            metric: "protocol floor: refresh p50 (1 bot)",
            value: fmt(protocol.p50, 2),
            unit: "ms",
            note: `bare Deno.serve + Deno KV replaying the refresh's two requests with both ` +
              `sides' WebCrypto calls (server: seal; open, body hash, request verify, chash, ` +
              `solution and join-state verify, X.509/SSH/join-state signs, issued cert hash; ` +
              `client: chash, solution sign, body hash, request sign), the handler's ` +
              `parallelism; no hono/zod/Keybound logic. Blocks of 50 alternating with the ` +
              `refreshes above (p50 ${fmt(one.p50, 2)} ms, ${fmt(one.p50 / protocol.p50, 2)}x)`,
          },
        );
        const ms = (v: number | null) => v === null ? "n/a" : fmt(v, 2);
        for (
          const [what, unit, pick, real] of [
            ["server CPU", "ms CPU", (m: JoinMeasurement) => m.serverCpuMs, "the auth process"],
            ["client CPU", "ms CPU", (m: JoinMeasurement) => m.clientCpuMs, "the real client"],
            [
              "threads waiting for a CPU",
              "ms",
              (m: JoinMeasurement) => m.waitedMs,
              "the real join (floor server + bench processes here)",
            ],
          ] as const
        ) {
          rows.push({
            metric: `protocol floor: ${what} per refresh (1 bot)`,
            value: ms(pick(protocol)),
            unit,
            note: `the same blocks; ${real}: ${ms(pick(one))} ms`,
          });
        }
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
