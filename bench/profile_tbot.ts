/**
 * Where a `tbot start --oneshot` refresh spends its time (dev tool, not part
 * of `deno task bench`): starts an auth service, onboards one bot, then runs
 * `runs` refresh oneshots with `--cpu-prof` and prints CPU per npm package
 * and Node built-ins (inclusive: any frame of the stack), the top self-time
 * functions, and one more run's `--debug` log (its timestamps show the wall
 * time between steps). Extra arguments are Deno flags; a `--v8-flags=…`
 * among them replaces the task's.
 *
 * `PROFILE_TIMELINE=1` adds what ran in each 10 ms of the last run;
 * `PROFILE_CALLERS=npm:PACKAGE` the project frames that led into a package.
 * `PROFILE_SOURCES=1` runs tbot from its sources (`entry/tbot.ts`) instead of
 * the task's launcher, whose bundle's frames carry no source file names.
 *
 * `deno run -A --unstable-kv bench/profile_tbot.ts [runs] [deno flags...]`
 *
 * @module
 */
import { botConfig, startTlsAuth, taskArgs, taskEnv } from "./tbot.ts";
import { fmt, median } from "./stats.ts";

const runs = Number(Deno.args[0] ?? 5);
const extra = Deno.args.slice(1);
const tmp = await Deno.makeTempDir({ prefix: "kb-profile-tbot-" });
const auth = await startTlsAuth(`${tmp}/auth`);
try {
  const cfg = await botConfig(auth, tmp, "p");
  const args = taskArgs("tbot");
  // A --v8-flags among the extra flags replaces the task's.
  const flags = args.slice(0, -1).filter((a) =>
    !(a.startsWith("--v8-flags") && extra.some((e) => e.startsWith("--v8-flags")))
  );
  const entry = Deno.env.get("PROFILE_SOURCES")
    ? args[args.length - 1].replace(/tbot_launch\.ts$/, "tbot.ts")
    : args[args.length - 1];
  const wall: number[] = [];
  const self = new Map<string, number>();
  // Inclusive time per npm package / node built-in: any frame of the sample's stack.
  const inclusive = new Map<string, number>();
  // PROFILE_TIMELINE=1: per 10 ms of the last run, what ran (deepest project frame or package).
  const timeline = Deno.env.get("PROFILE_TIMELINE") ? new Map<number, Map<string, number>>() : null;
  // For one package (PROFILE_CALLERS=name): the project frames that led into it.
  const focus = Deno.env.get("PROFILE_CALLERS");
  const callers = new Map<string, number>();
  for (let i = 0; i <= runs; i++) {
    const dir = `${tmp}/prof-${i}`;
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...flags,
        ...extra,
        `--cpu-prof`,
        `--cpu-prof-dir=${dir}`,
        entry,
        "start",
        "-c",
        cfg,
        "--oneshot",
      ],
      env: taskEnv("tbot"),
      stdout: "null",
      stderr: "piped",
    }).output();
    const ms = performance.now() - t0;
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    if (i === 0) continue; // onboarding
    wall.push(ms);
    for (const f of Deno.readDirSync(dir)) {
      const prof = JSON.parse(Deno.readTextFileSync(`${dir}/${f.name}`));
      type Node = {
        id: number;
        children?: number[];
        callFrame: { functionName: string; url: string; lineNumber: number };
      };
      const byId = new Map<number, Node>();
      const parent = new Map<number, number>();
      for (const n of prof.nodes as Node[]) {
        byId.set(n.id, n);
        for (const c of n.children ?? []) parent.set(c, n.id);
      }
      const groupOf = (url: string): string | null => {
        const npm = url.match(/registry\.npmjs\.org\/((@[^/]+\/)?[^/]+)/);
        if (npm) return `npm:${npm[1]}`;
        if (url.startsWith("node:") || url.includes("ext:deno_node")) return "node compat";
        return null;
      };
      const dt: number[] = prof.timeDeltas;
      prof.samples.forEach((id: number, k: number) => {
        const n = byId.get(id)!;
        const url = n.callFrame.url.replace(/^.*\/(node_modules|src|runtime-adapters)\//, "$1/");
        const name = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber}`;
        const ms = (dt[k + 1] ?? 0) / 1000;
        self.set(name, (self.get(name) ?? 0) + ms);
        const groups = new Set<string>();
        for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
          const g = groupOf(byId.get(at)!.callFrame.url);
          if (g) groups.add(g);
        }
        for (const g of groups) inclusive.set(g, (inclusive.get(g) ?? 0) + ms);
        if (timeline && i === runs) {
          const at = Math.floor(
            (prof.startTime + dt.slice(0, k + 1).reduce((a, b) => a + b, 0) - prof.startTime) /
              10_000,
          );
          let label = n.callFrame.functionName.startsWith("(") ? n.callFrame.functionName : "";
          for (let up: number | undefined = id; up !== undefined && !label; up = parent.get(up)) {
            const f = byId.get(up)!.callFrame;
            if (/\/(src|runtime-adapters)\//.test(f.url)) {
              label = `${f.functionName || "(anon)"}@${
                f.url.replace(/^.*\/(src|runtime-adapters)\//, "$1/")
              }`;
            }
          }
          label = [...groups].join("+") ? `${label} [${[...groups].join("+")}]` : label;
          const b = timeline.get(at) ?? new Map<string, number>();
          b.set(label, (b.get(label) ?? 0) + ms);
          timeline.set(at, b);
        }
        if (focus && groups.has(focus)) {
          const chain: string[] = [];
          for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
            const f = byId.get(at)!.callFrame;
            if (/\/(src|runtime-adapters)\//.test(f.url)) {
              chain.push(
                `${f.functionName || "(anon)"}@${
                  f.url.replace(/^.*\/(src|runtime-adapters)\//, "$1/")
                }`,
              );
            }
          }
          const key = chain.slice(0, 4).join(" < ");
          callers.set(key, (callers.get(key) ?? 0) + ms);
        }
      });
    }
  }
  // One more with --debug: the log's timestamps show where the wall time goes.
  const t0 = Date.now();
  const dbg = await new Deno.Command(Deno.execPath(), {
    args: [...flags, ...extra, entry, "start", "-c", cfg, "--oneshot", "--debug"],
    env: taskEnv("tbot"),
    stdout: "null",
    stderr: "piped",
  }).output();
  console.log(`--debug run, process started at ${new Date(t0).toISOString()}:`);
  console.log(new TextDecoder().decode(dbg.stderr));
  console.log(
    `oneshot wall median ${fmt(median(wall), 0)} ms (${wall.map((x) => fmt(x, 0)).join(", ")})`,
  );
  console.log("inclusive per package (ms per run):");
  for (const [g, ms] of [...inclusive].sort((a, b) => b[1] - a[1])) {
    console.log(`${fmt(ms / runs, 2).padStart(8)} ms  ${g}`);
  }
  if (timeline) {
    for (const [at, b] of [...timeline].sort((x, y) => x[0] - y[0])) {
      const top = [...b].sort((x, y) => y[1] - x[1]).slice(0, 3);
      console.log(
        `${String(at * 10).padStart(5)} ms  ${
          top.map(([l, ms]) => `${fmt(ms, 1)} ${l}`).join(" | ")
        }`,
      );
    }
  }
  if (focus) {
    console.log(`callers of ${focus}:`);
    for (const [c, ms] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      console.log(`${fmt(ms / runs, 2).padStart(8)} ms  ${c}`);
    }
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 40);
  for (const [name, ms] of top) console.log(`${fmt(ms / runs, 2).padStart(8)} ms  ${name}`);
} finally {
  await auth.stop();
  await Deno.remove(tmp, { recursive: true });
}
