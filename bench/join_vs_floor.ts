/**
 * Where a refresh join's time goes against the protocol floor (dev tool, not
 * part of `deno task bench`): a real `auth start` process and the protocol
 * floor server (`bench/join_transport.ts`, replaying one captured refresh of
 * the same bot with both sides' WebCrypto calls), refreshed in alternating
 * blocks (A B C C B A …) so the machine's load weighs on all alike; C is the
 * one-round-trip estimate (`FloorServer.oneTrip`). Prints, per
 * refresh, each process's CPU by thread name (the auth service or the floor
 * server, and this process as their client) and the medians of each request
 * and of the client's time around them.
 *
 * `deno run -A --unstable-kv bench/join_vs_floor.ts [blocks] [block size]`
 *
 * @module
 */
import { BENCH_CERTIFICATE_KEY, onboardBots, refresh, startAuth } from "./join.ts";
import { byThreadName, printThreads, type Stats, threadCpu } from "./join_threads.ts";
import { type CapturedExchange, capturingFetch, startFloorServer } from "./join_transport.ts";
import { fmt, median } from "./stats.ts";

const blocks = Number(Deno.args[0] ?? 12);
const size = Number(Deno.args[1] ?? 50);

type ByName = Map<string, [...Stats, number]>;

/** Adds one block's per-thread figures into `into` (thread counts: the largest seen). */
function addInto(into: ByName, block: ByName): void {
  for (const [name, v] of block) {
    const acc = into.get(name) ?? [0, 0, 0, 0, 0];
    into.set(name, [
      acc[0] + v[0],
      acc[1] + v[1],
      acc[2] + v[2],
      acc[3] + v[3],
      Math.max(acc[4], v[4]),
    ]);
  }
}

/** Medians of request and client times, ms, by label. */
const times = new Map<string, number[]>();
const record = (label: string, ms: number) => times.set(label, [...times.get(label) ?? [], ms]);
let lastAnswer = 0;

/** A `fetch` that records each request's time and the client's time before it, under `side()`. */
function timed(sideOf: () => string): typeof fetch {
  return async (input, init) => {
    const side = sideOf();
    const step = new URL(String(input)).pathname.split("/").pop()!;
    const t0 = performance.now();
    record(`${side}: client before ${step}`, t0 - lastAnswer);
    const res = await fetch(input, init);
    const body = await res.arrayBuffer();
    lastAnswer = performance.now();
    record(`${side}: ${step} (request to answer read)`, lastAnswer - t0);
    return new Response(body, { status: res.status, headers: res.headers });
  };
}

const dir = await Deno.makeTempDir({ prefix: "keybound-join-vs-floor-" });
const auth = await startAuth(`${dir}/auth`);
try {
  const [bot] = await onboardBots(auth, 1, BENCH_CERTIFICATE_KEY);
  for (let i = 0; i < 50; i++) await refresh(auth, bot);
  const exchanges: CapturedExchange[] = [];
  await refresh(auth, bot, capturingFetch(exchanges));
  // The floor server serves two sides: its requests are recorded under the one running.
  let floorSide = "floor";
  const floor = await startFloorServer(exchanges, dir, true, timed(() => floorSide));
  try {
    const sides = {
      join: { pid: auth.pid, run: () => refresh(auth, bot, timed(() => "join")) },
      floor: { pid: floor.pid, run: () => floor.refresh(0) },
      "one-trip floor": { pid: floor.pid, run: () => floor.oneTrip(0) },
    };
    const server = { join: new Map(), floor: new Map(), "one-trip floor": new Map() } as Record<
      keyof typeof sides,
      ByName
    >;
    const client = { join: new Map(), floor: new Map(), "one-trip floor": new Map() } as Record<
      keyof typeof sides,
      ByName
    >;
    times.clear();
    for (let b = 0; b < blocks; b++) {
      const order = ["join", "floor", "one-trip floor"] as const;
      for (const side of b % 2 ? [...order].reverse() : order) {
        const { pid, run } = sides[side];
        if (side !== "join") floorSide = side;
        const [s0, c0] = await Promise.all([threadCpu(pid), threadCpu("self")]);
        for (let i = 0; i < size; i++) {
          const t0 = performance.now();
          lastAnswer = t0;
          await run();
          const t1 = performance.now();
          record(`${side}: client after the last answer`, t1 - lastAnswer);
          record(`${side}: refresh`, t1 - t0);
        }
        const [s1, c1] = await Promise.all([threadCpu(pid), threadCpu("self")]);
        addInto(server[side], byThreadName(s0, s1));
        addInto(client[side], byThreadName(c0, c1));
      }
    }
    const n = blocks * size;
    console.log(`${n} refreshes each, blocks of ${size}; CPU per refresh by thread:`);
    printThreads(
      [
        ["auth", server.join],
        ["client", client.join],
        ["floor", server.floor],
        ["fclient", client.floor],
      ],
      n,
      "refresh",
    );
    console.log("medians (ms):");
    for (const [label, list] of [...times].sort()) {
      console.log(`  ${fmt(median(list), 3).padStart(7)}  ${label}`);
    }
  } finally {
    await floor.stop();
  }
} finally {
  await auth.stop();
  await Deno.remove(dir, { recursive: true });
}
