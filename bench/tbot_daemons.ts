/**
 * tbot daemons side by side (dev tool for docs/benchmarks.md's tbot
 * sections): each variant is a tbot daemon started as the `tbot` task starts
 * it — from a checkout's bundle, with a renewal interval of 20 ms — against
 * one auth service over HTTPS, each onboarding its own bot by CA pin as the
 * bench's daemon does. At each renewal count it reads VmRSS from
 * `/proc/PID/status` and splits `/proc/PID/smaps` ({@linkcode smapsSplit}).
 * Rounds alternate which variant starts first; medians per variant at the end.
 *
 * ```sh
 * deno run -A bench/tbot_daemons.ts --rounds 3 --at 100,300 \
 *   A=/tmp/main-copy 'B=.;v8+=--no-flush-bytecode' 'C=.;nodiag'
 * ```
 *
 * A variant is `NAME=CHECKOUT` (a directory holding this repository, its
 * bundle built by this tool) followed by `;`-separated options: `v8+=FLAGS`
 * appends to the task's `--v8-flags`, `deno+=FLAG` adds a flag of `deno
 * run`, `env=K=V` sets a variable, `nodiag`
 * starts the daemon without `diag_addr` (its renewals are then counted from
 * its log lines, as `/metrics` is not served), `stdout=FILE` saves its
 * standard output (where V8's `--trace-gc*` flags print), `floor` runs
 * ./tbot_floor.ts (a daemon's I/O without tbot's code) instead of tbot,
 * `floormods` the same with tbot's modules loaded (never called), `noproof` without its
 * loopback TLS handshake.
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
import { median, rssMb } from "./stats.ts";
import { parseIdentityFile } from "../src/protocol/identity_file.ts";

/** `/proc/PID/smaps` split by what owns the pages, MB. */
export interface SmapsSplit {
  /** The Deno binary's executable pages. */
  binCode: number;
  /** The Deno binary's read-only data. */
  binRo: number;
  /** The Deno binary's writable data. */
  binRw: number;
  /** Anonymous read-write mappings in multiples of 256 KB: V8's heap pages. */
  v8: number;
  /** malloc's `[heap]` and its thread arenas (64 MB-aligned reservations). */
  malloc: number;
  /** Other anonymous memory: thread stacks, small mappings. */
  anon: number;
  /** Other files: libc, ld.so, locale. */
  files: number;
}

const ARENA = 64 * 1024 * 1024;
const V8_PAGE = 256 * 1024;

/** Splits a process's resident pages by owner (Linux). */
export function smapsSplit(pid: number, exe = Deno.realPathSync(Deno.execPath())): SmapsSplit {
  const text = Deno.readTextFileSync(`/proc/${pid}/smaps`);
  type Map = { start: bigint; end: bigint; perms: string; path: string; rss: number };
  const maps: Map[] = [];
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      maps.push({
        start: BigInt(`0x${head[1]}`),
        end: BigInt(`0x${head[2]}`),
        perms: head[3],
        path: head[4],
        rss: 0,
      });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) maps[maps.length - 1].rss = Number(rss[1]) / 1024;
  }
  const s: SmapsSplit = { binCode: 0, binRo: 0, binRw: 0, v8: 0, malloc: 0, anon: 0, files: 0 };
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    const size = m.end - m.start;
    if (m.path === exe) {
      if (m.perms.includes("x")) s.binCode += m.rss;
      else if (m.perms.includes("w")) s.binRw += m.rss;
      else s.binRo += m.rss;
    } else if (m.path === "[heap]") {
      s.malloc += m.rss;
    } else if (m.path === "" && m.perms.startsWith("rw")) {
      // A malloc thread arena: a 64 MB-aligned reservation, its used part
      // read-write and the rest reserved (---p) right after it.
      const next = maps[i + 1];
      const arena = m.start % BigInt(ARENA) === 0n && next !== undefined &&
        next.path === "" && next.perms.startsWith("---") && next.start === m.end &&
        next.end - m.start === BigInt(ARENA);
      if (arena) s.malloc += m.rss;
      else if (size % BigInt(V8_PAGE) === 0n) s.v8 += m.rss;
      else s.anon += m.rss;
    } else if (m.path === "" || m.path.startsWith("[")) {
      s.anon += m.rss;
    } else {
      s.files += m.rss;
    }
  }
  return s;
}

/** User + system CPU seconds of a process, from `/proc/PID/stat` (Linux). */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second here).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** One daemon's samples. */
interface Sample {
  renewals: number;
  rss: number;
  /** User + system CPU seconds so far. */
  cpu: number;
  split: SmapsSplit;
}

interface Variant {
  name: string;
  root: string;
  v8: string[];
  deno: string[];
  env: Record<string, string>;
  diag: boolean;
  floor: boolean;
  floorModules?: boolean;
  floorNoProof?: boolean;
  stdout?: string;
}

function parseVariant(spec: string): Variant {
  const [head, ...opts] = spec.split(";");
  const eq = head.indexOf("=");
  if (eq < 1) throw new Error(`variant ${spec}: NAME=CHECKOUT[;options]`);
  const v: Variant = {
    name: head.slice(0, eq),
    root: Deno.realPathSync(head.slice(eq + 1)),
    v8: [],
    deno: [],
    env: {},
    diag: true,
    floor: false,
  };
  for (const o of opts) {
    if (o.startsWith("v8+=")) v.v8.push(...o.slice(4).split(","));
    else if (o.startsWith("deno+=")) v.deno.push(o.slice(6));
    else if (o.startsWith("env=")) {
      const [k, ...rest] = o.slice(4).split("=");
      v.env[k] = rest.join("=");
    } else if (o === "nodiag") v.diag = false;
    else if (o.startsWith("stdout=")) v.stdout = o.slice(7);
    else if (o === "floor") v.floor = true;
    else if (o === "floormods") v.floor = v.floorModules = true;
    else if (o === "noproof") v.floor = v.floorNoProof = true;
    else throw new Error(`variant ${spec}: unknown option ${o}`);
  }
  return v;
}

const HERE = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

/** The `tbot` task's arguments for checkout `root`, with extra V8 flags. */
function tbotArgs(v: Variant): string[] {
  const args = taskArgs("tbot").map((a) => {
    if (a.startsWith("--v8-flags=") && v.v8.length) return `${a},${v.v8.join(",")}`;
    return a.startsWith(`${HERE}/`) ? `${v.root}${a.slice(HERE.length)}` : a;
  });
  args.splice(args.findIndex((a) => a.endsWith(".ts")), 0, ...v.deno);
  return args;
}

async function buildBundle(root: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/tbot_bundle.ts"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

const FLOOR = `${HERE}/bench/tbot_floor.ts`;

/** ./tbot_floor.ts with the `tbot` task's flags: a daemon's I/O without tbot's code. */
async function startFloor(
  v: Variant,
  auth: Awaited<ReturnType<typeof startTlsAuth>>,
  dir: string,
  name: string,
  diag: string,
) {
  const id = await parseIdentityFile(await Deno.readTextFile(`${dir}/auth/admin-identity`));
  const ca = `${dir}/${name}-ca.pem`;
  await Deno.writeTextFile(ca, id.hostCaPems.join("\n"));
  const args = tbotArgs(v);
  args.splice(args.findIndex((a) => a.endsWith(".ts")));
  const p = new Deno.Command(Deno.execPath(), {
    args: [
      ...args,
      FLOOR,
      auth.addr,
      ca,
      diag,
      `${dir}/${name}-out`,
      "20",
      ...(v.floorModules ? ["modules"] : []),
      ...(v.floorNoProof ? ["noproof"] : []),
    ],
    env: { ...taskEnv("tbot"), ...v.env },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return {
    pid: p.pid,
    count: () => renewals(diag),
    async stop() {
      p.kill("SIGTERM");
      await p.status;
    },
  };
}

/**
 * Creates a daemon's bot and config before any daemon runs: the auth
 * service's per-address rate limit refuses admin calls beside renewing daemons.
 */
async function prepare(
  v: Variant,
  auth: Awaited<ReturnType<typeof startTlsAuth>>,
  dir: string,
  name: string,
): Promise<{ cfg: string; diag: string }> {
  const diag = `127.0.0.1:${freePort()}`;
  if (v.floor) return { cfg: "", diag };
  const cfg = await botConfig(
    auth,
    dir,
    name,
    `credential_ttl: 1h\nrenewal_interval: 20ms${v.diag ? `\ndiag_addr: ${diag}` : ""}`,
  );
  return { cfg, diag };
}

/** Starts one daemon; `count()` reads how many renewals it made. */
async function startDaemon(
  v: Variant,
  auth: Awaited<ReturnType<typeof startTlsAuth>>,
  dir: string,
  name: string,
  { cfg, diag }: { cfg: string; diag: string },
) {
  if (v.floor) return await startFloor(v, auth, dir, name, diag);
  const p = new Deno.Command(Deno.execPath(), {
    args: [...tbotArgs(v), "start", "-c", cfg],
    env: { ...taskEnv("tbot"), ...v.env },
    stdout: v.stdout ? "piped" : "null",
    stderr: "piped",
  }).spawn();
  // V8's --trace-gc* flags print to standard output.
  const saving = v.stdout
    ? Deno.open(v.stdout, { write: true, create: true, truncate: true }).then((f) =>
      p.stdout.pipeTo(f.writable)
    )
    : Promise.resolve();
  // Renewals from the log when /metrics is not served: one info line each.
  let logged = 0, shown = 0;
  const reading = (async () => {
    const dec = new TextDecoder();
    let rest = "";
    for await (const chunk of p.stderr) {
      const lines = (rest + dec.decode(chunk, { stream: true })).split("\n");
      rest = lines.pop()!;
      for (const l of lines) {
        if (l.includes("renewed the bot identity")) logged++;
        else if (/\b(WARN|ERROR)\b/i.test(l) && shown++ < 3) console.error(`${name}: ${l}`);
      }
    }
  })();
  return {
    pid: p.pid,
    count: () => v.diag ? renewals(diag) : Promise.resolve(logged),
    async stop() {
      p.kill("SIGTERM");
      await p.status;
      await reading.catch(() => {});
      await saving.catch(() => {});
    },
  };
}

const args = [...Deno.args];
function option(name: string, fallback: string): string {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [, value] = args.splice(i, 2);
  return value;
}
if (import.meta.main) {
  const rounds = Number(option("--rounds", "3"));
  const at = option("--at", "100,300").split(",").map(Number);
  const variants = args.map(parseVariant);
  for (const root of new Set(variants.map((v) => v.root))) await buildBundle(root);
  const tmp = await Deno.makeTempDir({ prefix: "kb-tbot-daemons-" });
  const auth = await startTlsAuth(`${tmp}/auth`, FLOOR_RATE_LIMIT);
  const results = new Map<string, Sample[][]>(variants.map((v) => [v.name, []]));
  try {
    const prepared = new Map<string, { cfg: string; diag: string }>();
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) {
        prepared.set(`r${r}-${v.name}`, await prepare(v, auth, tmp, `r${r}-${v.name}`));
      }
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      const load = Deno.loadavg()[0];
      const daemons = [];
      for (const v of order) {
        daemons.push({
          v,
          d: await startDaemon(v, auth, tmp, `r${r}-${v.name}`, prepared.get(`r${r}-${v.name}`)!),
          samples: [] as Sample[],
        });
      }
      try {
        for (const n of at) {
          const deadline = Date.now() + 20 * 60_000;
          const waiting = new Set(daemons);
          while (waiting.size) {
            for (const x of [...waiting]) {
              const seen = await x.d.count();
              if (seen >= n) {
                x.samples.push({
                  renewals: seen,
                  rss: rssMb(x.d.pid),
                  cpu: cpuSeconds(x.d.pid),
                  split: smapsSplit(x.d.pid),
                });
                waiting.delete(x);
              }
            }
            if (Date.now() > deadline) throw new Error(`daemons stuck below ${n} renewals`);
            await new Promise((res) => setTimeout(res, 50));
          }
        }
      } finally {
        for (const x of daemons) await x.d.stop();
      }
      for (const x of daemons) {
        results.get(x.v.name)!.push(x.samples);
        console.log(
          `round ${r} load ${load.toFixed(1)} ${x.v.name}: ` +
            x.samples.map((s) => `${s.renewals}: ${s.rss.toFixed(1)} (${s.cpu.toFixed(1)} s)`).join(
              " / ",
            ) +
            ` | ${
              JSON.stringify(
                Object.fromEntries(
                  Object.entries(x.samples.at(-1)!.split).map(([k, n]) => [k, +n.toFixed(1)]),
                ),
              )
            }`,
        );
      }
    }
    console.log("\nmedians (MB):");
    for (const v of variants) {
      const runs = results.get(v.name)!;
      const cols = at.map((_, i) => {
        const rss = median(runs.map((s) => s[i].rss));
        const cpu = median(runs.map((s) => s[i].cpu));
        const split = Object.fromEntries(
          Object.keys(runs[0][i].split).map((k) => [
            k,
            +median(runs.map((s) => s[i].split[k as keyof SmapsSplit])).toFixed(1),
          ]),
        );
        return `@${at[i]} ${rss.toFixed(1)} MB, CPU ${cpu.toFixed(1)} s ${JSON.stringify(split)}`;
      });
      console.log(`${v.name}: ${cols.join("\n   ")}`);
    }
  } finally {
    await auth.stop();
    await Deno.remove(tmp, { recursive: true });
  }
}
