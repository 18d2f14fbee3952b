/**
 * The client's share of a refresh join, alone (dev tool, not part of
 * `deno task bench`): one refresh of a real `auth start` is captured, the auth
 * service stopped, and `joinBoundKeypair` then refreshes against a `fetch`
 * that answers with the captured replies, so every microsecond measured is
 * the client's (request building, hashing and signing, `Response` and JSON
 * handling, zod). In `http` mode the answers come instead over loopback HTTP
 * from the protocol floor server (`bench/join_transport.ts`, which answers
 * any request with the captured replies after its share of WebCrypto work),
 * and the floor's own client is a side too: the same server for every side,
 * so the differences are the clients'. Sides, refreshed in alternating blocks
 * (A B B A …) so the machine's load weighs on all alike:
 *
 * - `this`: this checkout's `src/agent/join_client.ts`;
 * - `other`: another checkout's (the path given), to A/B a change;
 * - `floor` (`http` only): the protocol floor's client (the same WebCrypto
 *   calls with the same parallelism, the replies read with `Response.text`
 *   and `JSON.parse`, nothing else).
 *
 * With `+store`, each join also stores a pending record before its solution
 * leaves (`beforeCommit`: a file written and renamed, as tbot does).
 *
 * Prints each side's median wall time per refresh and main-thread CPU per
 * refresh, the medians of its phases (the client's time before `begin`,
 * between the answer of `begin` and the `continue`, and after that answer;
 * each request to its answer read), and the median of the per-pair ratios
 * `this / other`.
 *
 * `deno run -A --unstable-kv bench/join_client.ts http|replay[+store] [other join_client.ts|-] [blocks] [block size]`
 *
 * @module
 */
import { joinBoundKeypair } from "../src/agent/join_client.ts";
import type { JoinParams } from "../src/agent/join_types.ts";
import { certificatesFromPem } from "../src/pki/mod.ts";
import { BENCH_CERTIFICATE_KEY, onboardBots, refresh, startAuth } from "./join.ts";
import { byThreadName, threadCpu } from "./join_threads.ts";
import { type CapturedExchange, capturingFetch, startFloorServer } from "./join_transport.ts";
import { fmt, median } from "./stats.ts";

const [mode, store] = (Deno.args[0] ?? "").split("+");
if ((mode !== "http" && mode !== "replay") || (store !== undefined && store !== "store")) {
  throw new Error(
    "usage: join_client.ts http|replay[+store] [other join_client.ts|-] [blocks] [block size]",
  );
}
const otherPath = Deno.args[1] && Deno.args[1] !== "-" ? Deno.args[1] : undefined;
const blocks = Number(Deno.args[2] ?? 16);
const size = Number(Deno.args[3] ?? (mode === "http" ? 100 : 400));

type Join = (p: JoinParams) => Promise<unknown>;

/** A `fetch` answering each join step with its captured reply. */
function replayingFetch(exchanges: CapturedExchange[]): typeof fetch {
  const replies = new Map(exchanges.map((e) => [e.step, e.reply]));
  const headers = { "content-type": "application/json" };
  return (input) => {
    const step = String(input).split("/").pop()!;
    return Promise.resolve(new Response(replies.get(step)!, { status: 200, headers }));
  };
}

const dir = await Deno.makeTempDir({ prefix: "keybound-join-client-" });
const auth = await startAuth(`${dir}/auth`);
let exchanges: CapturedExchange[] = [];
let bot;
try {
  [bot] = await onboardBots(auth, 1, BENCH_CERTIFICATE_KEY);
  for (let i = 0; i < 20; i++) await refresh(auth, bot);
  await refresh(auth, bot, capturingFetch(exchanges = []));
} finally {
  await auth.stop();
}
/** When each request of the current refresh left and its answer was read, in order. */
let marks: number[] = [];
/** `send`, marking each request's start and the end of its answer's body (read here, for every side alike). */
const timed = (send: typeof fetch): typeof fetch => async (input, init) => {
  marks.push(performance.now());
  const res = await send(input, init);
  const body = await res.arrayBuffer();
  marks.push(performance.now());
  return new Response(body, { status: res.status, headers: res.headers });
};
// The floor server answers by the path's last segment; its origin is learnt from its warm-up.
let floorOrigin = "";
const floor = mode === "http"
  ? await startFloorServer(
    exchanges,
    dir,
    true,
    timed((input, init) => {
      floorOrigin = new URL(String(input)).origin;
      return fetch(input, init);
    }),
  )
  : null;
const params: JoinParams = {
  baseUrl: floor ? floorOrigin : auth.url,
  fetch: timed(floor ? fetch : replayingFetch(exchanges)),
  tokenName: bot.token,
  subjectKey: bot.subjectKey,
  ttlSeconds: 3600,
  previousJoinState: JSON.parse(exchanges[0].body).previous_join_state,
  identity: {
    certDer: certificatesFromPem(bot.last.certificates.tls_cert)[0],
    privateKey: bot.subjectKey.privateKey,
  },
  // `+store`: what tbot does before its solution leaves, an atomic write of the pending record.
  ...(store
    ? {
      beforeCommit: async (pending) => {
        await Deno.writeTextFile(`${dir}/pending.tmp`, JSON.stringify(pending), { mode: 0o600 });
        await Deno.rename(`${dir}/pending.tmp`, `${dir}/pending.json`);
      },
    }
    : {}),
  // The bench never rotates: the one bound key answers every challenge.
  keyStore: {
    findPrivateKey: () => Promise.resolve([...bot.boundKeys.values()][0]),
    generateRotationKey: () => Promise.reject(new Error("the bench does not rotate")),
  },
};

const sides = new Map<string, () => Promise<unknown>>([
  ["this", () => joinBoundKeypair(params)],
]);
if (otherPath) {
  const other = (await import(otherPath)).joinBoundKeypair as Join;
  sides.set("other", () => other(params));
}
if (floor) sides.set("floor", () => floor.refresh(0));

const wall = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
const gc = new Map<string, number[]>();
const crypto = new Map<string, number[]>();
const blockMedians = new Map<string, number[]>();
/** Per side and phase of a refresh (the client's parts and each request to its answer read), ms. */
const phases = new Map<string, number[]>();
const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...m.get(k) ?? [], v]);
for (const run of sides.values()) for (let i = 0; i < 200; i++) await run();
const names = [...sides.keys()];
for (let b = 0; b < blocks; b++) {
  for (const name of b % 2 ? [...names].reverse() : names) {
    const run = sides.get(name)!;
    const c0 = await threadCpu("self");
    const times: number[] = [];
    for (let i = 0; i < size; i++) {
      const t0 = performance.now();
      marks = [];
      await run();
      const end = performance.now();
      times.push(end - t0);
      const [s1, a1, s2, a2] = marks;
      push(phases, `${name}: before begin`, s1 - t0);
      push(phases, `${name}: begin`, a1 - s1);
      push(phases, `${name}: between`, s2 - a1);
      push(phases, `${name}: continue`, a2 - s2);
      push(phases, `${name}: after the answer`, end - a2);
    }
    const threads = byThreadName(c0, await threadCpu("self"));
    let mainCpu = 0, helpers = 0, pool = 0;
    for (const [thread, v] of threads) {
      if (thread.startsWith("V8 ")) helpers += v[0] + v[1];
      else if (thread.startsWith("tokio")) pool += v[0] + v[1];
      else mainCpu += v[0] + v[1];
    }
    push(cpu, name, mainCpu / size);
    push(gc, name, helpers / size);
    push(crypto, name, pool / size);
    push(blockMedians, name, median(times));
    for (const t of times) push(wall, name, t);
  }
}
console.log(`${Deno.args[0]}: ${blocks} blocks of ${size} refreshes, load ${Deno.loadavg()[0]}`);
for (const name of names) {
  console.log(
    `${name.padEnd(6)} p50 ${fmt(median(wall.get(name)!), 3)} ms  main CPU ${
      fmt(median(cpu.get(name)!), 3)
    } ms  V8 helpers ${fmt(median(gc.get(name)!), 3)} ms  tokio (WebCrypto) ${
      fmt(median(crypto.get(name)!), 3)
    } ms per refresh`,
  );
}
for (const phase of ["before begin", "begin", "between", "continue", "after the answer"]) {
  console.log(
    `  ${phase.padEnd(17)} ${
      names.map((n) => `${n} ${fmt(median(phases.get(`${n}: ${phase}`)!), 3)}`).join("  ")
    } ms p50`,
  );
}
if (otherPath) {
  const a = blockMedians.get("this")!;
  const o = blockMedians.get("other")!;
  console.log(
    `pair ratio this/other (median of ${blocks}): ${fmt(median(a.map((x, i) => x / o[i])), 3)}`,
  );
}
await floor?.stop();
await Deno.remove(dir, { recursive: true });
