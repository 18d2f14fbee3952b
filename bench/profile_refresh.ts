/**
 * Where the wall time of one refresh join goes (dev tool, not part of
 * `deno task bench`): server and client in this process over loopback HTTP
 * with a Deno KV file, so both sides' steps share one clock.
 *
 * 1. `joins` timed refreshes: the client's median, each request's median as
 *    the client sees it, and the backend calls per refresh.
 * 2. The timeline of the refresh closest to the median, with every WebCrypto
 *    call and backend call: the client waits for each request, so what runs
 *    inside a request's span is the server's.
 * 3. The floor of the steps a refresh cannot avoid, measured here: a bare
 *    loopback HTTP round trip of the same sizes (two per refresh), the KV
 *    commit, and the sequential crypto of both sides (client Ed25519
 *    solution, SHA-256 of chash and body, P-256 request signature; server
 *    P-256 verify, Ed25519 verify of solution and join state, P-256
 *    certificate signature, Ed25519 join-state signature, AES-GCM open and seal).
 *
 * `deno run -A --unstable-kv bench/profile_refresh.ts [joins] [traced]`
 *
 * @module
 */
import { onboardedBot, putBot, startHarness } from "../tests/server/_join_fixture.ts";
import { generateKeyPair, sign, verify } from "../src/crypto/keys.ts";
import { openSession, sealSession } from "../src/protocol/session.ts";
import { fmt, median } from "./stats.ts";

const joins = Number(Deno.args[0] ?? 300);
const traced = Number(Deno.args[1] ?? 60);

interface Span {
  what: string;
  t0: number;
  t1: number;
}
let spans: Span[] | null = null;

/** Records calls of `obj[name]` as spans while tracing. */
function trace(obj: Record<string, unknown>, name: string, label: (args: unknown[]) => string) {
  const original = (obj[name] as (...a: unknown[]) => Promise<unknown>).bind(obj);
  obj[name] = async (...args: unknown[]) => {
    if (!spans) return await original(...args);
    const t0 = performance.now();
    try {
      return await original(...args);
    } finally {
      spans?.push({ what: label(args), t0, t1: performance.now() });
    }
  };
}

function algName(a: unknown): string {
  const alg = typeof a === "string" ? a : (a as { name: string }).name;
  return alg === "ECDSA" ? "P-256" : alg;
}

const h = await startHarness({ rateLimit: { perSecond: 1e9, burst: 1e9 } });
try {
  await putBot(h.ctx, "b1");
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  const subtle = crypto.subtle as unknown as Record<string, unknown>;
  for (const m of ["digest", "sign", "verify", "encrypt", "decrypt"]) {
    trace(subtle, m, (a) => `${m} ${algName(a[0])}`);
  }
  trace(subtle, "generateKey", (a) => `generateKey ${algName(a[0])}`);
  const backend = h.ctx.backend as unknown as Record<string, unknown>;
  for (const m of ["get", "list", "commit"]) trace(backend, m, () => `kv ${m}`);
  let requests: Span[] = [];
  const timed: typeof fetch = async (input, init) => {
    const t0 = performance.now();
    const res = await fetch(input, init);
    const body = await res.arrayBuffer();
    const path = new URL(String(input)).pathname.split("/").pop()!;
    requests.push({ what: `POST ${path}`, t0, t1: performance.now() });
    return new Response(body, { status: res.status, headers: res.headers });
  };

  for (let i = 0; i < 30; i++) await bot.join({ fetch: timed }); // warm-up
  requests = [];
  const kv: Span[] = [];
  const totals: number[] = [];
  spans = [];
  for (let i = 0; i < joins; i++) {
    spans = [];
    await bot.join({ fetch: timed });
    const keygen = spans.find((s) => s.what.startsWith("generateKey"));
    const start = keygen ? keygen.t1 : spans[0].t0;
    totals.push(requests[requests.length - 1].t1 - start);
    kv.push(...spans.filter((s) => s.what.startsWith("kv")));
  }
  console.log(`refresh (client view, from after the test bot's key generation):`);
  console.log(`  p50 ${fmt(median(totals), 2)} ms over ${joins}`);
  for (const path of ["POST begin", "POST continue"]) {
    const list = requests.filter((r) => r.what === path).map((r) => r.t1 - r.t0);
    console.log(`  ${path}: p50 ${fmt(median(list), 2)} ms`);
  }
  for (const m of ["kv get", "kv list", "kv commit"]) {
    const list = kv.filter((s) => s.what === m).map((s) => s.t1 - s.t0);
    if (list.length === 0) continue;
    console.log(
      `  ${m}: ${fmt(list.length / joins, 1)} per refresh, p50 ${fmt(median(list), 3)} ms`,
    );
  }

  // The timeline of the median refresh, each call marked with its side.
  const runs: { spans: (Span & { side: string })[]; total: number }[] = [];
  for (let i = 0; i < traced; i++) {
    spans = [];
    requests = [];
    await bot.join({ fetch: timed });
    const calls = spans.slice(spans.findIndex((s) => s.what.startsWith("generateKey")) + 1);
    const within = (s: Span) => requests.some((r) => r.t0 <= s.t0 && s.t1 <= r.t1);
    const all = [
      ...calls.map((s) => ({ ...s, side: within(s) ? "server" : "client" })),
      ...requests.map((s) => ({ ...s, side: "client" })),
    ].sort((a, b) => a.t0 - b.t0);
    runs.push({ spans: all, total: all[all.length - 1].t1 - all[0].t0 });
  }
  spans = null;
  runs.sort((a, b) => a.total - b.total);
  const mid = runs[Math.floor(runs.length / 2)];
  const t0 = mid.spans[0].t0;
  console.log(
    `\ntimeline of the median of ${traced} more refreshes (${
      fmt(mid.total, 2)
    } ms; ms from start):`,
  );
  for (const s of mid.spans) {
    console.log(
      `  ${fmt(s.t0 - t0, 2).padStart(6)} +${fmt(s.t1 - s.t0, 2).padStart(5)}  ${
        s.side.padEnd(6)
      } ${s.what}`,
    );
  }
  const count = (side: string) => {
    const per = new Map<string, number>();
    for (const r of runs) {
      for (const s of r.spans) {
        if (s.side !== side || s.what.startsWith("POST")) continue;
        per.set(s.what, (per.get(s.what) ?? 0) + 1 / runs.length);
      }
    }
    return [...per].map(([w, n]) => `${w} x${fmt(n, 1)}`).join(", ");
  };
  console.log(`  server calls per refresh: ${count("server")}`);
  console.log(`  client calls per refresh: ${count("client")}`);

  // The floor: each unavoidable step alone, wall-clock median, in this process.
  const wall = async (n: number, fn: () => Promise<unknown>) => {
    for (let i = 0; i < 20; i++) await fn();
    const t: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      await fn();
      t.push(performance.now() - a);
    }
    return median(t);
  };
  const reqBody = "x".repeat(1800);
  const resBody = "y".repeat(4000);
  const bare = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    async (req) => {
      await req.arrayBuffer();
      return new Response(resBody, { headers: { "content-type": "application/json" } });
    },
  );
  const bareUrl = `http://127.0.0.1:${(bare.addr as Deno.NetAddr).port}/`;
  const rtt = await wall(300, async () => {
    const r = await fetch(bareUrl, {
      method: "POST",
      body: reqBody,
      headers: { "content-type": "application/json" },
    });
    await r.arrayBuffer();
  });
  await bare.shutdown();
  const p256 = await generateKeyPair("ES256");
  const ed = await generateKeyPair("EdDSA");
  const msg = crypto.getRandomValues(new Uint8Array(600));
  const p256Sig = await sign(p256.privateKey, msg);
  const edSig = await sign(ed.privateKey, msg);
  const aes = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  const session = { sid: "0".repeat(32), exp: Date.now() / 1000 + 60, pad: "x".repeat(900) };
  const sealed = await sealSession(aes, session);
  const ops: [string, number, () => Promise<unknown>][] = [
    ["P-256 sign (client request; server X.509)", 2, () => sign(p256.privateKey, msg)],
    ["P-256 verify (server: signed continue)", 1, () => verify(p256.publicKey, p256Sig, msg)],
    ["Ed25519 sign (client solution; server join state)", 2, () => sign(ed.privateKey, msg)],
    ["Ed25519 verify (server: solution, join state)", 2, () => verify(ed.publicKey, edSig, msg)],
    ["SHA-256 (client chash, body)", 2, () => crypto.subtle.digest("SHA-256", msg)],
    ["AES-GCM seal (begin)", 1, () => sealSession(aes, session)],
    ["AES-GCM open (continue)", 1, () => openSession(aes, sealed, null)],
  ];
  let floor = 2 * rtt;
  console.log(`\nfloor of one refresh's sequential steps (wall, median, this process):`);
  console.log(`  loopback HTTP round trip, bare Deno.serve, same sizes: ${fmt(rtt, 3)} ms x2`);
  const commit = median(kv.filter((s) => s.what === "kv commit").map((s) => s.t1 - s.t0));
  floor += commit;
  console.log(`  KV commit of the join (measured above): ${fmt(commit, 3)} ms x1`);
  for (const [name, n, fn] of ops) {
    const ms = await wall(300, fn);
    floor += n * ms;
    console.log(`  ${name}: ${fmt(ms, 3)} ms x${n}`);
  }
  console.log(`  sum: ${fmt(floor, 2)} ms (refresh p50 above: ${fmt(median(totals), 2)} ms)`);
} finally {
  await h.close();
}
