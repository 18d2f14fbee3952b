/**
 * The shared-backend section (issue #9): refresh joins from 50 bots against
 * one auth process on Deno KV, one on PostgreSQL, and two on PostgreSQL
 * behind HAProxy (TCP mode), all in the same run; and the PostgreSQL commit
 * ceiling (conditional compare-and-swap transactions per second straight
 * through the backend). PostgreSQL is the test fixture's real server
 * (initdb into a temp dir); without it or HAProxy the rows say why.
 *
 * @module
 */
import { HAPROXY, startHaproxy } from "../tests/ha/_haproxy.ts";
import { openBackend, PG_PASSWORD, postgresMissing, startPostgres } from "../tests/ha/_postgres.ts";
import { freePort } from "../tests/tbot/_harness.ts";
import {
  type AuthProcess,
  type JoinMeasurement,
  measureRefreshJoins,
  onboardBots,
  refresh,
  startAuth,
} from "./join.ts";
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt } from "./stats.ts";

/** Sizes of {@linkcode haSection}. */
export interface HaSizes {
  /** Bots onboarded per deployment. */
  bots: number;
  /** Measured refreshes per deployment, spread over the bots. */
  joins: number;
  /** Concurrent writers of the commit ceiling. */
  casWriters: number;
  /** Duration of the commit ceiling, ms. */
  casMs: number;
}

/** Commits/s of `writers` workers, each compare-and-swapping its own key. */
async function casCeiling(url: string, writers: number, ms: number): Promise<number> {
  const b = await openBackend(url);
  try {
    let done = 0;
    const end = performance.now() + ms;
    const start = performance.now();
    await Promise.all(Array.from({ length: writers }, async (_, w) => {
      const key = ["bench", "cas", String(w)];
      let version: string | null = null;
      let n = 0;
      while (performance.now() < end) {
        const r = await b.commit({
          checks: [{ key, version }],
          mutations: [{ type: "set", key, value: n++ }],
        });
        if (!r.ok) throw new Error("a private key's compare-and-swap lost");
        version = (await b.get(key))!.version;
        done++;
      }
    }));
    return done / ((performance.now() - start) / 1000);
  } finally {
    await b.close();
  }
}

async function measure(entry: AuthProcess, s: HaSizes): Promise<JoinMeasurement> {
  const bots = await onboardBots(entry, s.bots);
  for (const bot of bots) await refresh(entry, bot); // warm-up
  return await measureRefreshJoins(entry, bots, s.joins);
}

function joinRows(label: string, m: JoinMeasurement, s: HaSizes): BenchRow[] {
  const note = `${s.joins} joins, ${s.bots} bots`;
  return [
    { metric: `refresh joins/s, ${label}`, value: fmt(m.rate, 1), unit: "joins/s", note },
    { metric: `refresh p50, ${label}`, value: fmt(m.p50, 1), unit: "ms", note },
    { metric: `refresh p99, ${label}`, value: fmt(m.p99, 1), unit: "ms", note },
  ];
}

/** The section. */
export function haSection(
  sizes: HaSizes = { bots: 50, joins: 1000, casWriters: 8, casMs: 3000 },
): BenchSection {
  return {
    id: "ha",
    title: "shared backend: Deno KV vs PostgreSQL (1 and 2 instances behind HAProxy), plain HTTP",
    async run(run) {
      const missing = postgresMissing ?? (HAPROXY ? undefined : "haproxy is not installed");
      if (missing) {
        return [{ metric: "shared-backend section", value: "skipped", note: missing }];
      }
      const rows: BenchRow[] = [];
      const stop: (() => Promise<unknown>)[] = [];
      await using pg = await startPostgres();
      try {
        run.log("ha: Deno KV, 1 instance");
        const kvAuth = await startAuth(`${run.workDir}/ha-kv`);
        stop.push(() => kvAuth.stop());
        const kv = await measure(kvAuth, sizes);
        await stop.pop()!();
        rows.push(...joinRows("Deno KV, 1 instance", kv, sizes));

        const env = { PGPASSWORD: PG_PASSWORD };
        run.log("ha: PostgreSQL, 1 instance");
        await pg.createDatabase("bench1");
        const one = await startAuth(`${run.workDir}/ha-pg1`, {
          args: ["--storage", pg.url("bench1")],
          env,
        });
        stop.push(() => one.stop());
        const pg1 = await measure(one, sizes);
        await stop.pop()!();
        rows.push(...joinRows("PostgreSQL, 1 instance", pg1, sizes));

        run.log("ha: PostgreSQL, 2 instances behind HAProxy");
        await pg.createDatabase("bench2");
        const pair = await Promise.all(
          [0, 1].map((i) =>
            startAuth(`${run.workDir}/ha-pg2-${i}`, { args: ["--storage", pg.url("bench2")], env })
          ),
        );
        for (const a of pair) stop.push(() => a.stop());
        const lb = await startHaproxy(
          await Deno.makeTempDir({ dir: run.workDir }),
          freePort(),
          pair.map((a, i) => ({ name: `auth${i}`, addr: new URL(a.url).host })),
        );
        stop.push(() => lb.stop());
        const entry: AuthProcess = { ...pair[0], url: `http://${lb.address}` };
        const pg2 = await measure(entry, sizes);
        rows.push(...joinRows("PostgreSQL, 2 instances + HAProxy", pg2, sizes));
        const spread = Object.values(await lb.sessions());

        run.log("ha: PostgreSQL commit ceiling");
        await pg.createDatabase("benchcas");
        const cas = await casCeiling(pg.url("benchcas"), sizes.casWriters, sizes.casMs);
        rows.push(
          {
            metric: "PostgreSQL CAS commits/s",
            value: fmt(cas, 0),
            unit: "commits/s",
            note: `${sizes.casWriters} writers, own keys, read + CAS each`,
          },
          {
            metric: "ratio PostgreSQL 1 / Deno KV (joins/s)",
            value: fmt(pg1.rate / kv.rate, 2),
            unit: "x",
          },
          {
            metric: "ratio PostgreSQL 2 instances / 1 (joins/s)",
            value: fmt(pg2.rate / pg1.rate, 2),
            unit: "x",
            note: `HAProxy sessions per instance: ${spread.join(" / ")}`,
          },
          {
            metric: "refresh joins per CAS ceiling (PostgreSQL, 2 instances)",
            value: fmt(pg2.rate / cas, 3),
            unit: "x",
          },
        );
        return rows;
      } finally {
        for (const f of stop.reverse()) await f().catch(() => {});
      }
    },
  };
}
