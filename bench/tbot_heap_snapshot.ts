/**
 * A heap snapshot of a tbot daemon (dev tool for docs/benchmarks.md's tbot
 * sections): one daemon as bench/tbot.ts starts it (the `tbot` task's flags,
 * 20 ms renewals, onboarding by CA pin) plus `--inspect` on a loopback port;
 * after N renewals (default 300) it asks V8 for a snapshot over the
 * inspector protocol and prints what the heap holds by node type, the
 * largest object kinds and the largest strings. `--save FILE` keeps the
 * snapshot (Chromium's DevTools opens it).
 *
 * ```sh
 * deno run -A bench/tbot_heap_snapshot.ts [--renewals 300] [--save FILE]
 * ```
 *
 * @module
 */
import {
  botConfig,
  FLOOR_RATE_LIMIT,
  freePort,
  renewals,
  startTlsAuth,
  taskArgs,
  taskEnv,
} from "./tbot.ts";

/** Takes a heap snapshot over the inspector at `port`; returns its JSON text. */
async function snapshot(port: number): Promise<string> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((r) => ws.addEventListener("open", r, { once: true }));
  const chunks: string[] = [];
  let id = 0;
  const pending = new Map<number, () => void>();
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    if (m.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(m.params.chunk);
    if (m.id !== undefined) pending.get(m.id)?.();
  });
  const call = (method: string, params: unknown = {}) =>
    new Promise<void>((r) => {
      pending.set(++id, r);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("HeapProfiler.enable");
  await call("HeapProfiler.collectGarbage");
  await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  ws.close();
  return chunks.join("");
}

/** Sums a snapshot's self sizes by node type and by name within each type. */
function summarize(text: string): void {
  const snap = JSON.parse(text);
  const meta = snap.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const strings: string[] = snap.strings;
  const nodes: number[] = snap.nodes;
  const width = fields.length;
  const ti = fields.indexOf("type"), ni = fields.indexOf("name"), si = fields.indexOf("self_size");
  const byType = new Map<string, number>();
  const byName = new Map<string, number>();
  const bigStrings: [number, string][] = [];
  let total = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + ti]];
    const size = nodes[i + si];
    const name = strings[nodes[i + ni]];
    total += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    const key = type === "string" || type === "concatenated string" || type === "sliced string"
      ? "(strings)"
      : `${type}: ${name.slice(0, 60)}`;
    byName.set(key, (byName.get(key) ?? 0) + size);
    if (type === "string" && size > 20_000) bigStrings.push([size, name.slice(0, 80)]);
  }
  const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;
  console.log(`total ${kb(total)}`);
  for (const [t, n] of [...byType].sort((a, b) => b[1] - a[1])) console.log(`  ${t}: ${kb(n)}`);
  console.log("largest kinds:");
  for (const [t, n] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`  ${kb(n)}  ${t}`);
  }
  console.log("strings over 20 KB:");
  for (const [n, s] of bigStrings.sort((a, b) => b[0] - a[0]).slice(0, 30)) {
    console.log(`  ${kb(n)}  ${JSON.stringify(s)}`);
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--renewals");
  const want = i >= 0 ? Number(Deno.args[i + 1]) : 300;
  const s = Deno.args.indexOf("--save");
  const save = s >= 0 ? Deno.args[s + 1] : undefined;
  const tmp = await Deno.makeTempDir({ prefix: "kb-tbot-heap-" });
  // Unthrottled, as the bench's daemons: at the default rate limit a daemon renewing
  // every 20 ms meets RATE_LIMITED answers and retries with backoff.
  const auth = await startTlsAuth(`${tmp}/auth`, FLOOR_RATE_LIMIT);
  const diag = `127.0.0.1:${freePort()}`;
  const port = freePort();
  try {
    const cfg = await botConfig(
      auth,
      tmp,
      "daemon",
      `credential_ttl: 1h\nrenewal_interval: 20ms\ndiag_addr: ${diag}`,
    );
    const args = taskArgs("tbot");
    const at = args.findIndex((a) => a.endsWith(".ts"));
    args.splice(at, 0, `--inspect=127.0.0.1:${port}`);
    const p = new Deno.Command(Deno.execPath(), {
      args: [...args, "start", "-c", cfg],
      env: taskEnv("tbot"),
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      while ((await renewals(diag)) < want) await new Promise((r) => setTimeout(r, 100));
      const text = await snapshot(port);
      if (save) await Deno.writeTextFile(save, text);
      summarize(text);
    } finally {
      p.kill("SIGTERM");
      await p.status;
    }
  } finally {
    await auth.stop();
    await Deno.remove(tmp, { recursive: true });
  }
}
