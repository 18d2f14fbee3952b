/**
 * The fleet section (issue #13 target 4): a real `auth start`, with the heap
 * budget of the shipped service, on the seeded fleet backend
 * (`bench/fleet_seed.ts`: 10,000 bots, tokens and instances, 1,000,000 audit
 * events in Deno KV on disk). Measures the first page of each listing tctl
 * makes (`bots ls`, `bots instances ls`, `audit ls`, `audit ls --type T`) as
 * the signed admin request over HTTP: the first (cold) call and the median of
 * several; then the auth process's RSS. Also runs each listing once as a real
 * `tctl` process, next to bare `deno run` with the same flags, and reports
 * the backend's bytes per bot and per refresh join from the seed.
 *
 * @module
 */
import { ensureFleetSeed, RARE_EVENT_TYPE } from "./fleet_seed.ts";
import { startAuth } from "./join.ts";
import { AUTH_V8_FLAGS } from "../runtime-adapters/deno/auth_process.ts";
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt, median, rssMb } from "./stats.ts";

/** First-page latency target, ms. */
export const FLEET_PAGE_TARGET_MS = 200;
/** Auth RSS target after the listings, MB. */
export const FLEET_RSS_TARGET_MB = 150;
/** Requests per listing (the first is the cold one). */
const CALLS = 10;

const TCTL_ENTRY = new URL("../runtime-adapters/deno/entry/tctl.ts", import.meta.url).pathname;

async function wallMs(args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).split("\n")[0]);
  return performance.now() - t0;
}

/** The fleet section. */
export function fleetSection(): BenchSection {
  return {
    id: "fleet",
    title: "10,000-bot fleet: first pages of tctl listings against a seeded Deno KV backend",
    async run(run) {
      const seed = await ensureFleetSeed(run.log);
      const auth = await startAuth(seed.dataDir);
      const rows: BenchRow[] = [];
      try {
        const rssStart = rssMb(auth.pid);
        const listings: [string, string[], () => Promise<{ items: unknown[] }>][] = [
          ["tctl bots ls", ["bots", "ls"], () => auth.admin.listPage("bot")],
          [
            "tctl bots instances ls",
            ["bots", "instances", "ls"],
            () => auth.admin.listPage("bot_instance"),
          ],
          ["tctl audit ls", ["audit", "ls"], () => auth.admin.audit()],
          [
            `tctl audit ls --type ${RARE_EVENT_TYPE}`,
            ["audit", "ls", "--type", RARE_EVENT_TYPE],
            () => auth.admin.audit({ type: RARE_EVENT_TYPE }),
          ],
        ];
        for (const [label, , call] of listings) {
          const times: number[] = [];
          let items = 0;
          for (let i = 0; i < CALLS; i++) {
            const t0 = performance.now();
            items = (await call()).items.length;
            times.push(performance.now() - t0);
          }
          const worst = Math.max(times[0], median(times));
          rows.push({
            metric: `first page: ${label}`,
            value: `${fmt(median(times), 1)} / ${fmt(times[0], 1)}`,
            unit: "ms",
            verdict: worst <= FLEET_PAGE_TARGET_MS ? "PASS" : "MISS",
            note:
              `median of ${CALLS} / first (cold) request; ${items} rows; target <= ${FLEET_PAGE_TARGET_MS} ms`,
          });
        }
        const rss = rssMb(auth.pid);
        rows.push({
          metric: "auth RSS after the listings",
          value: fmt(rss, 0),
          unit: "MB",
          verdict: rss <= FLEET_RSS_TARGET_MB ? "PASS" : "MISS",
          note: `${
            fmt(rssStart, 0)
          } MB at start; target <= ${FLEET_RSS_TARGET_MB} MB (${AUTH_V8_FLAGS})`,
        });
        // The same listings as real tctl processes (the `tctl` task's flags).
        const flags = ["run", "--allow-net", "--allow-read", "--allow-env"];
        const conn = ["--auth-server", auth.url, "-i", `${seed.dataDir}/admin-identity`];
        const empty = `${run.workDir}/empty.ts`;
        await Deno.writeTextFile(empty, "");
        const bare = median(await Promise.all([0, 1, 2].map(() => wallMs([...flags, empty]))));
        for (const [label, args] of listings) {
          const walls: number[] = [];
          for (let i = 0; i < 3; i++) {
            walls.push(await wallMs([...flags, TCTL_ENTRY, ...args, ...conn]));
          }
          rows.push({
            metric: `${label}, whole process`,
            value: fmt(median(walls), 0),
            unit: "ms",
            note: `median of 3; bare deno run ${fmt(bare, 0)} ms`,
          });
        }
      } finally {
        await auth.stop();
      }
      const perBot = (seed.bytes.bots - seed.bytes.bootstrap) / seed.bots;
      const perEvent = (seed.bytes.events - seed.bytes.bots) / seed.events;
      rows.push(
        {
          metric: "backend bytes per bot",
          value: fmt(perBot, 0),
          unit: "B",
          note: "bot + token + instance (10 authentications, 11 heartbeats), Deno KV file",
        },
        {
          metric: "backend bytes per refresh join",
          value: fmt(perEvent, 0),
          unit: "B",
          note: `its bot.join audit event (2 rows, kept 30 days); KV file ${
            fmt(seed.bytes.events / 2 ** 30, 2)
          } GiB`,
        },
      );
      return rows;
    },
  };
}
