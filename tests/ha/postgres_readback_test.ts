/**
 * What the PostgreSQL backend answers for a commit whose answer it did not get (review-pg,
 * session 12; both tests failed before the fix).
 *
 * 1. The session ended while the commit waited for its synchronous standby: PostgreSQL keeps
 *    it "committed locally, but might not have been replicated to the standby". A read finds
 *    it, yet a failover to that standby loses it: the answer must stay BACKEND_UNAVAILABLE
 *    (it was `{ok: true}` while the read-back was a read).
 * 2. A commit through a listener that closes before answering (a balancer whose server is
 *    down) was never sent: no read-back (it was read back for 3 s: 9 connects, ~2.8 s).
 * 3. A commit still running (waiting for a row lock) when its connection is cut: the check
 *    looked before it applied and answered BACKEND_UNAVAILABLE, and the commit applied later.
 *    Its session is ended first now, so what the check finds is final (session 13).
 * 4. The check, ending that session included, answers within its 3 s even while the read pool
 *    (where the session is ended) is stalled (review-pg s13 S2).
 * 5. A commit refused on a read-only session (25006) does not end that session: it answered and
 *    lives on, and may run another commit the driver sent there (review-pg s13 N6).
 * 6. As 3 for a commit that only deletes: it has no version to look for, and its session was not
 *    ended; it deleted after its BACKEND_UNAVAILABLE answer (review-pg s13 N7).
 */
import type { KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { KV_TABLE } from "../../runtime-adapters/deno/postgres/schema.ts";
import { collectUnhandled, lockWaiters, postgresMissing, startPostgres } from "./_postgres.ts";
import { proxiedBackend } from "./_postgres_proxy.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);
const outcome = (p: Promise<unknown>) =>
  p.then((x) => JSON.stringify(x), (e) => (e as KeyboundError).code ?? String(e));

Deno.test({
  name: "PostgresBackend: a commit not confirmed by the synchronous standby is never answered ok",
  ignore,
  async fn() {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    await using backend = await pg.backend("kb");
    const key = ["gen"];
    await backend.commit({ checks: [], mutations: [{ type: "set", key, value: 1 }] });
    const held = await backend.get(key);
    const waiters = async () =>
      Number(
        (await pg.psql(
          "postgres",
          "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )).trim(),
      );
    const endWaiters = () =>
      pg.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
      );
    // A synchronous standby that has not confirmed (here: none connected).
    await pg.psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = 'standby1'");
    await pg.psql("postgres", "SELECT pg_reload_conf()");
    // Commits wait for it once the checkpointer has reloaded (an instant after pg_reload_conf
    // returns; under load the backend's commit went through before, and the test waited in
    // vain): until a commit of psql's waits (the fixture's server default is off).
    const sentinel = pg.psql(
      "postgres",
      "BEGIN; SET LOCAL synchronous_commit = on; CREATE TABLE sync_sentinel (); COMMIT",
    ).catch(() => {});
    await waitUntil(async () => await waiters() === 1, "psql's commit to wait for the standby", {
      timeoutMs: 30_000,
    });
    await endWaiters();
    await sentinel;
    const logBefore = (await Deno.readTextFile(`${pg.dir}/server.log`)).length;
    const committing = outcome(backend.commit({
      checks: [{ key, version: held!.version }],
      mutations: [{ type: "set", key, value: 2 }],
    }));
    await waitUntil(async () => await waiters() === 1, "the commit to wait for its standby", {
      timeoutMs: 30_000,
    });
    // The session ends while it waits (pg_terminate_backend; a fast shutdown the same).
    await endWaiters();
    const r = await committing;
    const log = (await Deno.readTextFile(`${pg.dir}/server.log`)).slice(logBefore);
    assert(log.includes("might not have been replicated to the standby"), "PostgreSQL warned");
    // A failover to that standby loses the commit: answered ok, the bot holds a certificate
    // the new primary never stored (GENERATION_MISMATCH, its token locked).
    assertEquals(r, "BACKEND_UNAVAILABLE");
    // The lost-answer check's own write waited for the standby too. Given up after its 3 s, it
    // is cancelled: left waiting, it held a commit connection until the standby came back.
    await waitUntil(async () => await waiters() === 0, "the check's write to stop waiting", {
      timeoutMs: 30_000,
    });
  },
});

Deno.test({
  name: "PostgresBackend: a commit whose connection closed before the server answered " +
    "(never sent) is not read back",
  ignore,
  async fn() {
    await using setup = await proxiedBackend();
    const { pg, proxy, backend } = setup;
    try {
      await backend.commit({ checks: [], mutations: [{ type: "set", key: ["k"], value: 1 }] });
      await pg.psql(
        "postgres",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity " +
          "WHERE application_name = 'keybound-auth'",
      );
      // Until the driver has seen those connections close, the commit may go to one of them:
      // a write after the server's FIN (EPIPE), not this test's case.
      await waitUntil(
        async () =>
          proxy.open === 0 && (await pg.psql(
              "postgres",
              "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'keybound-auth'",
            )).trim() === "0",
        "the backend's connections to close",
      );
      proxy.mode = "close at once";
      const before = proxy.connects;
      const r = await outcome(
        backend.commit({ checks: [], mutations: [{ type: "set", key: ["k"], value: 2 }] }),
      );
      assertEquals(r, "BACKEND_UNAVAILABLE");
      const made = proxy.connects - before;
      // HEAD: 10 (the read-back's connects for 3 s); before c3a9612: 1.
      assert(made <= 2, `${made} connects for one commit that was never sent`);
    } finally {
      proxy.mode = "forward";
    }
  },
});

for (
  const [what, mutation] of [
    // Before: the value became 2 after the request was answered with an unknown outcome.
    ["a commit", { type: "set", key: ["gen"], value: 2 }],
    // N7: before, the key was deleted after such an answer.
    ["a delete-only commit", { type: "delete", key: ["gen"] }],
  ] as const
) {
  Deno.test({
    name: `PostgresBackend: ${what} still running when its connection is cut is ended before ` +
      "the check, so it never applies after its answer",
    ignore,
    async fn() {
      await using setup = await proxiedBackend();
      const { pg, proxy, backend } = setup;
      const key = ["gen"];
      await backend.commit({ checks: [], mutations: [{ type: "set", key, value: 1 }] });
      const held = await backend.get(key);
      // Another session holds the row: the commit waits for it, its snapshot already taken.
      const row = await pg.hold("kb", `SELECT 1 FROM ${KV_TABLE} FOR UPDATE`);
      let released = false;
      try {
        const committing = outcome(backend.commit({
          checks: [{ key, version: held!.version }],
          mutations: [mutation],
        }));
        await lockWaiters(pg, 1);
        // The network between the instance and PostgreSQL fails: the statement runs on.
        proxy.cutClients();
        assertEquals(await committing, "BACKEND_UNAVAILABLE");
        await row[Symbol.asyncDispose]();
        released = true;
        // Until no statement of the backend runs any more: the cut one has ended or committed.
        await waitUntil(
          async () =>
            (await pg.psql(
              "postgres",
              "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'keybound-auth' " +
                "AND state = 'active'",
            )).trim() === "0",
          "the cut statement to end",
        );
        // Still the value before the commit: it never applied.
        assertEquals((await backend.get(key))?.value, 1);
      } finally {
        if (!released) await row[Symbol.asyncDispose]();
      }
    },
  });
}

Deno.test({
  name: "PostgresBackend: a cut commit is answered by the check's deadline even while the read " +
    "pool is stalled",
  ignore,
  async fn() {
    using unhandled = collectUnhandled();
    await using setup = await proxiedBackend();
    const { pg, proxy, backend } = setup;
    const key = ["gen"];
    await backend.commit({ checks: [], mutations: [{ type: "set", key, value: 1 }] });
    const held = await backend.get(key);
    const row = await pg.hold("kb", `SELECT 1 FROM ${KV_TABLE} FOR UPDATE`);
    let stalled = true;
    // Ends the stall at the latest: without the bound, the answer waits for it (a connection
    // gone silent holds it ~15 min).
    let guard: ReturnType<typeof setTimeout> | undefined;
    const release = () => {
      clearTimeout(guard);
      if (!stalled) return Promise.resolve();
      stalled = false;
      return row[Symbol.asyncDispose]();
    };
    try {
      const committing = outcome(backend.commit({
        checks: [{ key, version: held!.version }],
        mutations: [{ type: "set", key, value: 2 }],
      }));
      await lockWaiters(pg, 1);
      // An ACCESS EXCLUSIVE request (an operator's ALTER TABLE, a migration) queues behind
      // the commit, and every read of the pool (10 connections) queues behind it.
      const exclusive = pg.psql(
        "kb",
        `BEGIN; LOCK TABLE ${KV_TABLE} IN ACCESS EXCLUSIVE MODE; COMMIT`,
      )
        .catch((e) => String(e));
      await lockWaiters(pg, 1, "psql");
      const reads = Array.from({ length: 10 }, (_, i) => outcome(backend.get(["r", `${i}`])));
      await lockWaiters(pg, 11);
      proxy.cutClients("commit pool");
      guard = setTimeout(release, 30_000);
      const answer = await committing;
      const answeredWhileStalled = stalled;
      await release();
      assertEquals(answer, "BACKEND_UNAVAILABLE");
      // Before: the session was ended from the read pool outside the check's deadline, and
      // the answer came only when the stall ended (12 s in the review's run).
      assert(answeredWhileStalled, "the answer waited for the read pool's stall to end");
      await Promise.all([exclusive, ...reads]);
      assertEquals(unhandled.reasons, []);
    } finally {
      await release();
    }
  },
});

Deno.test({
  name: "PostgresBackend: a commit refused on a read-only session (25006) does not end that " +
    "session, which lives on",
  ignore,
  async fn() {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    await using backend = await pg.backend("kb");
    // For the backend's sessions from now on (psql's are in another database).
    await pg.psql(
      "postgres",
      "ALTER DATABASE kb SET default_transaction_read_only = on; " +
        "ALTER DATABASE kb SET log_statement = 'all'",
    );
    await pg.psql(
      "postgres",
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity " +
        "WHERE application_name = 'keybound-auth'",
    );
    const set = { checks: [], mutations: [{ type: "set" as const, key: ["k"], value: 1 }] };
    const serverLog = () => Deno.readTextFileSync(`${pg.dir}/server.log`);
    // A commit may still meet a session just ended (a lost connection: its session is rightly
    // ended): until one meets a read-only session, what the server logged during it tells.
    let during = "";
    await waitUntil(
      async () => {
        const before = serverLog().length;
        assertEquals(await outcome(backend.commit(set)), "BACKEND_UNAVAILABLE");
        during = serverLog().slice(before);
        // The commit's own statement refused (the check's write, on a fresh session, is too).
        return /read-only transaction\n[^\n]*STATEMENT: +WITH want AS/.test(during);
      },
      "a commit to meet a read-only session",
      { timeoutMs: 60_000 },
    );
    // Before: the check first ended the session the commit went to if it ran a commit (the
    // driver may have sent the next one there), with this statement on the read pool.
    assert(!during.includes("pg_terminate_backend"), during);
  },
});
