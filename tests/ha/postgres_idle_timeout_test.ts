/**
 * A server that ends idle sessions itself (`idle_session_timeout`, set
 * short here): the request whose statement meets the end fails
 * BACKEND_UNAVAILABLE like any lost connection (it was STORAGE_ERROR, a 500:
 * "terminating connection due to idle-session timeout", 57P05), the next one
 * gets a fresh connection, and commits stay exact: a lost answer is read
 * back, never reported as not applied. `idle_in_transaction_session_timeout`
 * never ends the backend's sessions. Real PostgreSQL.
 *
 * @module
 */
import type { KeyboundError } from "../../src/errors.ts";
import type { Entry } from "../../src/storage/backend.ts";
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { postgresMissing, startPostgres } from "./_postgres.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);

/** Reads, each followed by a commit when it succeeded. */
const OPS = 100;
/**
 * How long the pools may take to get a read and a commit through (a request succeeds only if
 * it reaches the server within 1 ms of its session going idle: rare on a loaded machine).
 */
const PATIENCE = { timeoutMs: 60_000 };

const CASES = [
  {
    setting: "idle_session_timeout",
    name: "requests whose session the server ends fail BACKEND_UNAVAILABLE, commits stay exact",
  },
  {
    // 25P03 would be mapped as 57P05 is (tests/storage/postgres_errors_test.ts).
    setting: "idle_in_transaction_session_timeout",
    name: "never met: every commit is one statement, no session waits inside a transaction",
  },
];

for (const { setting, name } of CASES) {
  Deno.test({
    name: `PostgresBackend, server ${setting}=1ms: ${name}`,
    ignore,
    async fn() {
      await using pg = await startPostgres();
      await pg.createDatabase("kb");
      await using backend = await pg.backend("kb");
      // For the backend's sessions from now on (the database's default; psql's sessions are in
      // another database): the ones open() made are ended, so every later one has it.
      await pg.psql("postgres", `ALTER DATABASE kb SET ${setting} = '1ms'`);
      await pg.psql(
        "postgres",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity " +
          "WHERE application_name = 'keybound-auth'",
      );
      // Until each pool has noticed, a request may go to a connection just ended (EPIPE): not
      // this test's case. One read and one commit succeed first.
      const succeeds = (p: Promise<unknown>) => p.then(() => true, () => false);
      await waitUntil(() => succeeds(backend.get(["warm"])), "a read to succeed", PATIENCE);
      await waitUntil(
        () =>
          succeeds(backend.commit({ checks: [], mutations: [{ type: "delete", key: ["warm"] }] })),
        "a commit to succeed",
        PATIENCE,
      );
      const outcomes: Record<string, number> = {};
      const count = (k: string) => (outcomes[k] = (outcomes[k] ?? 0) + 1);
      const code = (err: unknown) => (err as KeyboundError).code ?? String(err);
      /**
       * The values a read may find at the end: the last commit answered ok (none: the key
       * absent), and any after it.
       */
      let possible: (number | undefined)[] = [undefined];
      for (let n = 0; n < OPS; n++) {
        // One writer: each commit checks the version it just read, so `{ok: false}` would be
        // a commit reported as not applied that did apply (or one applied twice).
        const read = await backend.get<number>(["k"]).then((e) => ({ e }), (err) => {
          count(code(err));
          return undefined;
        });
        if (!read) continue;
        const r = await backend.commit({
          checks: [{ key: ["k"], version: read.e?.version ?? null }],
          mutations: [{ type: "set", key: ["k"], value: n }],
        }).then((x) => (x.ok ? "ok" : "not applied"), code);
        count(r);
        if (r === "ok") possible = [n];
        else if (r === "BACKEND_UNAVAILABLE") possible.push(n);
        // Now and then a pause, so that statements meet the server's timer at every point.
        if (n % 3 === 0) await new Promise((r) => setTimeout(r, Math.random() * 3));
      }
      await pg.psql("postgres", `ALTER DATABASE kb RESET ${setting}`);
      const keys = Object.keys(outcomes).sort();
      assert(
        keys.every((k) => k === "ok" || k === "BACKEND_UNAVAILABLE"),
        JSON.stringify(outcomes),
      );
      if (setting === "idle_session_timeout") {
        // The server ended sessions under requests: before, about a third of the requests were
        // STORAGE_ERROR (57P05).
        assert((outcomes.BACKEND_UNAVAILABLE ?? 0) > 0, JSON.stringify(outcomes));
      } else {
        assertEquals(keys, ["ok"], JSON.stringify(outcomes));
      }
      // The pools' sessions still have the setting: read until one answers.
      let last: Entry<number> | null = null;
      await waitUntil(
        () => backend.get<number>(["k"]).then((e) => ((last = e), true), () => false),
        "a read to succeed",
        PATIENCE,
      );
      const found = (last as Entry<number> | null)?.value;
      assert(possible.includes(found), `${found} of ${possible}`);
      assertEquals(outcomes["not applied"], undefined);
    },
  });
}
