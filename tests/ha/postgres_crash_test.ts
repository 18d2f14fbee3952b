/**
 * PostgreSQL crashing (immediate shutdown: SIGQUIT to the postmaster, then
 * a start with crash recovery) under requests in flight. Each request that
 * is cut fails with BACKEND_UNAVAILABLE and the service serves again once
 * the database is back; and no commit the backend acknowledged is lost,
 * whatever the server's synchronous_commit: a lost join commit leaves a bot
 * holding a certificate newer than the stored one, which the auth service
 * takes for a stolen identity (GENERATION_MISMATCH) and locks the bot's
 * token. The fixture's server runs with synchronous_commit=off, as a
 * server tuned for speed may. Real PostgreSQL, a real auth process.
 *
 * @module
 */
import type { KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { postgresMissing, type PostgresServer, startPostgres } from "./_postgres.ts";
import { startBotCluster } from "./_cluster.ts";
import { proxiedBackend } from "./_postgres_proxy.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);

/** SIGQUIT to the postmaster (PostgreSQL's immediate shutdown: a crash), then a start. */
async function crash(pg: PostgresServer): Promise<void> {
  const pid = pg.serverPid();
  assert(pid !== undefined, "PostgreSQL runs");
  Deno.kill(pid, "SIGQUIT");
  await waitUntil(() => pg.serverPid() === undefined, "PostgreSQL to go", { timeoutMs: 60_000 });
  await pg.start();
}

Deno.test({
  name:
    "PostgresBackend: commits acknowledged before a crash survive it (server synchronous_commit=off)",
  ignore,
  async fn() {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    // The WAL writer flushes what asynchronous commits left only every 10 s: a crash before
    // then loses them, deterministically.
    await pg.psql("postgres", "ALTER SYSTEM SET wal_writer_delay = '10s'");
    await pg.psql("postgres", "SELECT pg_reload_conf()");
    assertEquals((await pg.psql("kb", "SHOW synchronous_commit")).trim(), "off");
    await using backend = await pg.backend("kb");
    for (let i = 0; i < 20; i++) {
      const r = await backend.commit({
        checks: [],
        mutations: [{ type: "set", key: ["k", String(i).padStart(2, "0")], value: i }],
      });
      assert(r.ok);
    }
    await crash(pg);
    await waitUntil(
      () => backend.get(["k", "00"]).then(() => true, () => false),
      "a read after the crash",
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    const kept = await backend.list(["k"]);
    assertEquals(kept.map((e) => e.value), Array.from({ length: 20 }, (_, i) => i));
  },
});

Deno.test({
  name: "auth start --storage postgres://: PostgreSQL crashes under joins: cut joins fail " +
    "BACKEND_UNAVAILABLE, no bot is locked, every bot joins after",
  ignore,
  sanitizeResources: false,
  async fn() {
    await using setup = await startBotCluster();
    const { c, bots, fetch: f } = setup;
    for (const bot of bots) await bot.join({ fetch: f });
    const failures: Record<string, number> = {};
    let joined = 0;
    let stop = false;
    // Each bot renews in a loop, as tbot daemons do (after a failure, a pause: the service
    // limits failing requests per address).
    const loops = bots.map(async (bot) => {
      while (!stop) {
        try {
          await bot.join({ fetch: f });
          joined++;
        } catch (err) {
          const code = (err as KeyboundError).code ?? String(err);
          failures[code] = (failures[code] ?? 0) + 1;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    });
    try {
      for (let i = 0; i < 4; i++) {
        const before = joined;
        await waitUntil(() => joined >= before + 12, "joins between crashes", {
          timeoutMs: 60_000,
          intervalMs: 20,
        });
        await crash(c.pg);
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    // Before: 3 or 4 tokens locked per run (GENERATION_MISMATCH, then LOCKED).
    assertEquals(
      Object.keys(failures).filter((k) => k !== "BACKEND_UNAVAILABLE"),
      [],
      JSON.stringify(failures),
    );
    assert((failures.BACKEND_UNAVAILABLE ?? 0) > 0, `no join was cut: ${JSON.stringify(failures)}`);
    await setup.everyBotJoins("the crashes");
  },
});

Deno.test({
  name: "PostgresBackend: a commit whose answer is lost after PostgreSQL applied it is answered ok",
  ignore,
  async fn() {
    await using setup = await proxiedBackend();
    const { proxy, backend } = setup;
    const key = ["gen"];
    assert(
      (await backend.commit({ checks: [], mutations: [{ type: "set", key, value: 1 }] })).ok,
    );
    const held = await backend.get(key);
    proxy.cutNextAnswer();
    // Before: BACKEND_UNAVAILABLE, though the value was written (a renewal retried with
    // generation 1 would then meet 2).
    const r = await backend.commit({
      checks: [{ key, version: held!.version }],
      mutations: [{ type: "set", key, value: 2 }],
    });
    assertEquals(r, { ok: true });
    assertEquals((await backend.get(key))?.value, 2);
    // A commit whose checks failed wrote nothing: its lost answer stays BACKEND_UNAVAILABLE.
    proxy.cutNextAnswer();
    const stale = await backend.commit({
      checks: [{ key, version: held!.version }],
      mutations: [{ type: "set", key, value: 3 }],
    }).then((x) => JSON.stringify(x), (err) => (err as KeyboundError).code);
    assertEquals(stale, "BACKEND_UNAVAILABLE");
    assertEquals((await backend.get(key))?.value, 2);
    // Every connection lost with the answer, and the server refusing for a while (a crash
    // and its recovery): the commit waits to read its version back.
    const now = await backend.get(key);
    proxy.crashOnNextAnswer();
    const committing = backend.commit({
      checks: [{ key, version: now!.version }],
      mutations: [{ type: "set", key, value: 4 }],
    }).then((x) => JSON.stringify(x), (err) => (err as KeyboundError).code);
    await waitUntil(() => proxy.refused >= 2, "the read-back to be refused twice");
    proxy.mode = "forward";
    assertEquals(await committing, JSON.stringify({ ok: true }));
    assertEquals((await backend.get(key))?.value, 4);
  },
});
