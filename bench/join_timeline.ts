/**
 * Where the wall time of one refresh join goes, across the two processes of
 * `deno task bench join` (dev tool, not part of the bench): a real
 * `auth start --insecure-no-tls` process, instrumented with
 * `bench/join_timeline_preload.ts` (every WebCrypto call, Deno KV call and
 * served request as a span), and this process as the client (its WebCrypto
 * calls and each request as spans). Both sides stamp spans on the wall clock
 * (`performance.timeOrigin + performance.now()`), so they share one timeline.
 *
 * Prints, over `joins` refreshes of one bot, each span's median start (from
 * the refresh's start) and median duration, in order: what a span does not
 * cover is JavaScript on one side or the other, or a thread waiting to run.
 *
 * `deno run -A --unstable-kv bench/join_timeline.ts [joins] [EdDSA|ES256] [checkout]`: the
 * auth service runs from `checkout` (another worktree, to compare; default this one).
 *
 * @module
 */
import type { KeyAlgorithm } from "../src/crypto/keys.ts";
import { BENCH_CERTIFICATE_KEY, onboardBots, refresh, startAuth } from "./join.ts";
import { fmt, median, percentile } from "./stats.ts";

interface Span {
  what: string;
  t0: number;
  t1: number;
}

const joins = Number(Deno.args[0] ?? 300);
const alg = (Deno.args[1] ?? BENCH_CERTIFICATE_KEY) as KeyAlgorithm;
const now = () => performance.timeOrigin + performance.now();

let clientSpans: Span[] | null = null;
const subtle = crypto.subtle as unknown as Record<string, unknown>;
for (const m of ["digest", "sign", "verify", "importKey", "exportKey"]) {
  const original = (subtle[m] as (...a: unknown[]) => Promise<unknown>).bind(crypto.subtle);
  subtle[m] = (...args: unknown[]) => {
    if (!clientSpans) return original(...args);
    const a = args[m === "importKey" ? 2 : 0] as string | { name: string };
    const name = typeof a === "string" ? a : a.name === "ECDSA" ? "P-256" : a.name;
    const t0 = now();
    return original(...args).finally(() =>
      clientSpans?.push({ what: `${m} ${name}`, t0, t1: now() })
    );
  };
}
const timedFetch: typeof fetch = async (input, init) => {
  const t0 = now();
  const res = await fetch(input, init);
  const t1 = now();
  const body = await res.arrayBuffer();
  const step = new URL(String(input)).pathname.split("/").pop();
  clientSpans?.push({ what: `POST ${step} (to headers)`, t0, t1 });
  clientSpans?.push({ what: `POST ${step} (body read)`, t0: t1, t1: now() });
  return new Response(body, { status: res.status, headers: res.headers });
};

const dataDir = await Deno.makeTempDir({ prefix: "keybound-timeline-" });
const preload = new URL("./join_timeline_preload.ts", import.meta.url).pathname;
const checkout = Deno.args[2];
const auth = await startAuth(dataDir, {
  denoFlags: ["--preload", preload],
  ...(checkout ? { entry: `${checkout}/runtime-adapters/deno/entry/auth.ts` } : {}),
});
try {
  const [bot] = await onboardBots(auth, 1, alg);
  for (let i = 0; i < 50; i++) await refresh(auth, bot, timedFetch);
  await (await fetch(`${auth.url}/__timeline`)).arrayBuffer();
  const runs: { start: number; end: number; client: Span[] }[] = [];
  for (let i = 0; i < joins; i++) {
    clientSpans = [];
    const start = now();
    await refresh(auth, bot, timedFetch);
    runs.push({ start, end: now(), client: clientSpans });
    clientSpans = null;
  }
  const server = await (await fetch(`${auth.url}/__timeline`)).json() as Span[];
  // Each refresh's spans, keyed by side, name and occurrence.
  const byKey = new Map<string, { starts: number[]; durs: number[] }>();
  const order: string[] = [];
  for (const r of runs) {
    const mine = [
      ...r.client.map((s) => ({ ...s, side: "client" })),
      ...server.filter((s) => s.t0 >= r.start && s.t1 <= r.end).map((s) => ({
        ...s,
        side: "server",
      })),
    ].sort((a, b) => a.t0 - b.t0);
    const seen = new Map<string, number>();
    for (const s of mine) {
      const base = `${s.side.padEnd(6)} ${s.what}`;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      const key = n > 1 ? `${base} #${n}` : base;
      let e = byKey.get(key);
      if (!e) {
        e = { starts: [], durs: [] };
        byKey.set(key, e);
        order.push(key);
      }
      e.starts.push(s.t0 - r.start);
      e.durs.push(s.t1 - s.t0);
    }
  }
  const totals = runs.map((r) => r.end - r.start);
  console.log(
    `${joins} refreshes, subject key ${alg}: p50 ${fmt(median(totals), 2)} ms (p10 ${
      fmt(percentile(totals, 10), 2)
    }, p25 ${fmt(percentile(totals, 25), 2)}, p75 ${fmt(percentile(totals, 75), 2)}, p90 ${
      fmt(percentile(totals, 90), 2)
    })`,
  );
  // Additive phases per refresh (each a difference of two stamps of the same
  // refresh, so their medians add up to about the median total).
  const phases = new Map<string, number[]>();
  const add = (k: string, v: number) => phases.set(k, [...(phases.get(k) ?? []), v]);
  for (const r of runs) {
    const c = (what: string) => r.client.find((s) => s.what === what);
    const srv = (what: string) =>
      server.find((s) => s.what === what && s.t0 >= r.start && s.t1 <= r.end);
    const [bh, bb, ch, cb] = ["begin (to headers)", "begin (body read)", "continue (to headers)"]
      .concat("continue (body read)").map((w) => c(`POST ${w}`));
    const [sb, sc] = [srv("serve begin"), srv("serve continue")];
    if (!bh || !bb || !ch || !cb || !sb || !sc) continue;
    add("client: before begin", bh.t0 - r.start);
    add("begin: request to handler", sb.t0 - bh.t0);
    add("begin: handler", sb.t1 - sb.t0);
    add("begin: handler return to client headers", bh.t1 - sb.t1);
    add("client: body, solve, sign", ch.t0 - bh.t1);
    add("continue: request to handler", sc.t0 - ch.t0);
    add("continue: handler", sc.t1 - sc.t0);
    add("continue: handler return to client headers", ch.t1 - sc.t1);
    add("client: body read, result", r.end - ch.t1);
    // Inside the continue handler: time no recorded span covers (JavaScript
    // on the main thread, or waiting for it).
    const inner = server.filter((s) => s.t0 >= sc.t0 && s.t1 <= sc.t1 && s !== sc)
      .sort((a, b) => a.t0 - b.t0);
    let covered = 0;
    let edge = sc.t0;
    for (const s of inner) {
      if (s.t1 <= edge) continue;
      covered += s.t1 - Math.max(s.t0, edge);
      edge = s.t1;
    }
    add("continue handler: in crypto/KV spans", covered);
    add("continue handler: outside spans (JS, waits)", sc.t1 - sc.t0 - covered);
  }
  console.log(`  phase medians (ms):`);
  for (const [k, v] of phases) console.log(`  ${fmt(median(v), 2).padStart(6)}  ${k}`);
  console.log(
    `  start    dur  dur90  (medians and p90 of duration, ms; spans seen in fewer than half the refreshes left out)`,
  );
  const rows = order
    .map((k) => ({ k, ...byKey.get(k)! }))
    .filter((e) => e.starts.length >= runs.length / 2)
    .sort((a, b) => median(a.starts) - median(b.starts));
  for (const e of rows) {
    console.log(
      `  ${fmt(median(e.starts), 2).padStart(6)} ${fmt(median(e.durs), 2).padStart(6)} ${
        fmt(percentile(e.durs, 90), 2).padStart(6)
      }  ${e.k}` +
        (e.starts.length !== runs.length ? `  (${e.starts.length}/${runs.length})` : ""),
    );
  }
} finally {
  await auth.stop();
  await Deno.remove(dataDir, { recursive: true });
}
