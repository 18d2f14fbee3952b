/**
 * Native CPU profile of Durable Object renewals (dev tool, not part of
 * `deno task bench`): where the workerd process spends a renewal's CPU
 * outside JavaScript too (SQLite and its `fsync`, BoringSSL, the HTTP
 * objects, the event loop, V8's compilers and collector), next to the
 * renewal's floor and an empty RPC in the same workerd, as `deno task bench
 * edge` runs them (tests/workers/do_renewal_bench.ts). `bench/profile_edge.ts`
 * shows the JavaScript alone, by function and module.
 *
 * Each kind of call runs `calls` times in a row under `perf record -g` of
 * the workerd process (every thread: V8 compiles and collects on helper
 * threads); each sample is put under the deepest frame of its stack that
 * names a subsystem, and the table gives milliseconds of workerd CPU per
 * call (perf's own overhead included, so it reads above the bench's
 * figures). Needs Linux `perf` with permission to profile this user's
 * processes (`kernel.perf_event_paranoid` ≤ 2).
 *
 * `deno run -A --unstable-kv bench/profile_edge_native.ts [calls]`
 *
 * @module
 */
import { startFloorBench } from "../tests/workers/do_renewal_bench.ts";

/** Sampling frequency, Hz. */
const HZ = 4000;

/**
 * Subsystems, matched against each frame from the leaf up; the first frame
 * that matches one names the sample's subsystem.
 */
const SUBSYSTEMS: [string, RegExp][] = [
  ["fsync (kernel)", /do_fsync|__x64_sys_fsync|ext4_sync|jbd2/],
  ["SQLite", /sqlite3|Sqlite/],
  [
    "BoringSSL",
    /ecp_nistz256|EVP_|ECDSA_|ecdsa_|ED25519|ed25519|x25519|sha256_block|SHA256|sha512|SHA512|aes_|aesni|gcm_|GCM|bn_|BN_|CRYPTO_|ec_GFp|ec_point|EC_|fiat_|p256/,
  ],
  [
    "V8 garbage collector",
    /v8::internal::(Heap::|Scavenger|MarkCompact|MinorMark|ConcurrentMarking|Sweeper|GCTracer|MemoryAllocator|MarkingVisitor|Evacuat)/,
  ],
  [
    "V8 compilers (bytecode, Maglev, TurboFan)",
    /v8::internal::(Compiler|Parser|Parse|Scanner|BytecodeGenerator|maglev|compiler::|baseline::|OptimizingCompile)|CompileLazy|Runtime_CompileOptimized|Runtime_InstallBaselineCode/,
  ],
  ["JSON", /JsonParser|JsonStringifier/],
  ["malloc", /tcmalloc|TCMalloc|^malloc$|^free$|^operator new|^operator delete|__libc_malloc/],
  [
    "kernel: sockets, epoll, futex",
    /tcp_|sock_|__sys_send|__sys_recv|sendmsg|recvmsg|epoll|futex|__x64_sys_write|__x64_sys_read|ksys_write|ksys_read|unix_stream/,
  ],
  [
    "JavaScript (bytecode, baseline and optimised code, builtins, ICs, runtime)",
    /^Builtins_|v8::internal::Runtime_|Interpreter|^\[unknown\]$|v8::internal::(Object|JSObject|LookupIterator|String|Factory|Map|Runtime|Builtin|Execution|Isolate|Handle|ElementsAccessor|Dictionary|RegExp|JSReceiver|Lookup)/,
  ],
  [
    "HTTP and fetch objects (Request, Headers, streams, URL)",
    /kj::.*Http|workerd::api::(Headers|Request|Response|Fetcher|fetch|Body|.*Stream)|getHeaderKeyFor|parse_url|ada::/,
  ],
  [
    "storage API glue",
    /workerd::(ActorSqlite|SqliteKv|api::DurableObjectStorage|ActorCache|server::AlarmScheduler)/,
  ],
  ["Cap'n Proto RPC", /capnp::/],
  [
    "V8 API and jsg glue",
    /workerd::jsg::|v8::(Value|Object|Function|String|Isolate|Context|HandleScope|ArrayBuffer|Local|Promise|Global|TracedReference)|v8::internal::GlobalHandles|GlobalizeTraced/,
  ],
  ["KJ event loop and promises", /kj::/],
  ["workerd, other", /workerd::/],
];

/** Samples per subsystem (and their total) in a `perf record` file. */
async function classify(data: string): Promise<{ counts: Map<string, number>; total: number }> {
  const out = await new Deno.Command("perf", {
    args: ["script", "-i", data, "-F", "ip,sym"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const counts = new Map<string, number>();
  let total = 0;
  for (const sample of new TextDecoder().decode(out.stdout).split("\n\n")) {
    const frames = sample.split("\n").map((l) => l.trim()).filter(Boolean)
      .map((l) => l.replace(/^[0-9a-f]+\s*/, "").replace(/\+0x[0-9a-f]+$/, "") || "[unknown]");
    if (frames.length === 0) continue;
    total++;
    let name = "other";
    for (const frame of frames) {
      const hit = SUBSYSTEMS.find(([, pattern]) => pattern.test(frame));
      if (hit) {
        name = hit[0];
        break;
      }
    }
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return { counts, total };
}

const calls = Number(Deno.args[0] ?? 400);
const dir = await Deno.makeTempDir({ prefix: "keybound-profile-native-" });
try {
  await using bench = await startFloorBench("profile-bot");
  const { bot, echoUrl, pids } = bench;
  for (let i = 0; i < 20; i++) { // warm-up, as the bench's (but longer: perf's run is long)
    await bot.renew();
    await bot.floor(echoUrl);
    await bot.ping();
  }
  const kinds: [string, () => Promise<unknown>][] = [
    ["renewal", async () => {
      const r = await bot.renew();
      if (!r.ok) throw new Error(`renewal failed: ${JSON.stringify(r.error)}`);
    }],
    ["floor", () => bot.floor(echoUrl)],
    ["empty RPC", () => bot.ping()],
  ];
  const results: { counts: Map<string, number>; total: number }[] = [];
  for (const [i, [, call]] of kinds.entries()) {
    const data = `${dir}/${i}.data`;
    const perf = new Deno.Command("perf", {
      args: ["record", "-e", "cpu-clock", "-F", String(HZ), "-g", "-o", data, "-p", pids.join(",")],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // perf attaches asynchronously; calls made before it has do not count.
    await new Promise((r) => setTimeout(r, 500));
    for (let n = 0; n < calls; n++) await call();
    perf.kill("SIGINT");
    const status = await perf.output();
    if (!status.success && (await Deno.stat(data).catch(() => null)) === null) {
      throw new Error(`perf record failed: ${new TextDecoder().decode(status.stderr).trim()}`);
    }
    results.push(await classify(data));
  }
  const perCall = (n: number) => (1000 * n / HZ / calls).toFixed(2).padStart(7);
  console.log(`ms of workerd CPU per call, ${calls} calls of each (perf's overhead included)`);
  console.log(`${"".padEnd(75)}${kinds.map(([k]) => k.padStart(10)).join("")}  renewal-floor`);
  for (const name of [...SUBSYSTEMS.map(([n]) => n), "other"]) {
    const n = results.map((r) => r.counts.get(name) ?? 0);
    if (Math.max(...n) * 1000 / HZ / calls < 0.01) continue;
    console.log(
      `${name.padEnd(75)}${n.map((x) => perCall(x).padStart(10)).join("")}${perCall(n[0] - n[1])}`,
    );
  }
  const totals = results.map((r) => r.total);
  console.log(
    `${"total".padEnd(75)}${totals.map((x) => perCall(x).padStart(10)).join("")}${
      perCall(totals[0] - totals[1])
    }`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
