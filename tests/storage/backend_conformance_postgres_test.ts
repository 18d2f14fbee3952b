/**
 * The backend conformance checks against PostgresBackend on a real
 * PostgreSQL server (one fresh database per check), plus what only the
 * PostgreSQL backend has: schema versioning, start-up errors and TLS modes.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals } from "../_assert.ts";
import { openBackend, postgresMissing, startPostgres } from "../ha/_postgres.ts";
import { reportResults as report } from "./_report.ts";
import { runBackendConformance } from "./backend_conformance.ts";
import { ignoreUnless } from "../_tools.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);

async function refusal(p: Promise<unknown>): Promise<KeyboundError> {
  try {
    await p;
  } catch (err) {
    assert(err instanceof KeyboundError, `expected a KeyboundError, got ${err}`);
    return err;
  }
  throw new Error("expected a refusal");
}

Deno.test({
  name: "backend conformance: PostgresBackend on a real PostgreSQL server",
  ignore,
  async fn(t) {
    await using pg = await startPostgres();
    let n = 0;
    await report(
      t,
      await runBackendConformance(async () => {
        const db = `conf_${n++}`;
        await pg.createDatabase(db);
        return await pg.backend(db);
      }, { exactExpiry: true }),
    );
  },
});

Deno.test({
  name: "PostgresBackend: schema, start-up errors, sweep",
  ignore,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    const url = pg.url("kb");

    await t.step("several openers at once create the schema once", async () => {
      const all = await Promise.all(Array.from({ length: 5 }, () => openBackend(url)));
      for (const b of all) await b.close();
    });

    await t.step("expired rows are swept, live ones kept", async () => {
      const b = await openBackend(url);
      try {
        const r = await b.commit({
          checks: [],
          mutations: [
            { type: "set", key: ["s", "old"], value: 1, expiresAt: Date.now() - 10 },
            { type: "set", key: ["s", "new"], value: 2, expiresAt: Date.now() + 60_000 },
          ],
        });
        assert(r.ok);
        assertEquals(await b.sweepExpired(), 1);
        assertEquals((await b.list(["s"])).map((e) => e.value), [2]);
      } finally {
        await b.close();
      }
    });

    await t.step("write skew on absent keys: two crossed commits never both apply", async () => {
      // A checks k1 absent and writes k2; B checks k2 absent and writes k1. Only
      // serializable isolation refuses one of them (read committed lets both through).
      const b = await openBackend(url);
      try {
        for (let round = 0; round < 40; round++) {
          const [k1, k2] = [["skew", `${round}a`], ["skew", `${round}b`]];
          const crossed = (check: string[], write: string[]) =>
            b.commit({
              checks: [{ key: check, version: null }],
              mutations: [{ type: "set", key: write, value: round }],
            });
          const [ra, rb] = await Promise.all([crossed(k1, k2), crossed(k2, k1)]);
          assert(!(ra.ok && rb.ok), `round ${round}: both crossed commits applied`);
          assert(ra.ok || rb.ok, `round ${round}: neither applied`);
        }
      } finally {
        await b.close();
      }
    });

    await t.step("a wrong password is one clear line", async () => {
      const err = await refusal(openBackend(url, { password: "wrong" }));
      assertEquals(err.code, "CONFIG_INVALID");
      assert(/refused user "keybound"/.test(err.message), err.message);
      assert(!err.message.includes("wrong"), "the password must not be echoed");
    });

    await t.step("an unknown database is named", async () => {
      const err = await refusal(openBackend(pg.url("nope")));
      assert(/database "nope" does not exist/.test(err.message), err.message);
    });

    await t.step("an unreachable server is BACKEND_UNAVAILABLE", async () => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const err = await refusal(openBackend(`postgres://keybound@127.0.0.1:${port}/kb`));
      assertEquals(err.code, "BACKEND_UNAVAILABLE");
      assert(err.message.includes(`127.0.0.1:${port}/kb`), err.message);
    });

    await t.step("sslmode=require against a server without TLS is refused", async () => {
      const err = await refusal(openBackend(url.replace("sslmode=disable", "sslmode=require")));
      assert(err.message.startsWith("storage:"), err.message);
    });

    await t.step("a newer schema than the code knows is refused", async () => {
      await (await openBackend(url)).close();
      // As if a later Keybound had migrated this database.
      await pg.psql("kb", "INSERT INTO keybound_schema (version) VALUES (999)");
      const err = await refusal(openBackend(url));
      assertEquals(err.code, "CONFIG_INVALID");
      assert(/schema is version 999, newer than/.test(err.message), err.message);
    });
  },
});

Deno.test({
  name: "PostgresBackend: sslmode against a TLS-enabled server",
  ignore,
  async fn(t) {
    await using pg = await startPostgres({ tls: true });
    await pg.createDatabase("kb");
    const base = pg.url("kb").replace("?sslmode=disable", "");
    const ca = `${pg.tlsDir}/ca.crt`;
    const works = async (query: string) => (await openBackend(`${base}?${query}`)).close();

    await t.step("require, and verify-full with the server's CA (IP SAN)", async () => {
      await works("sslmode=require");
      await works(`sslmode=verify-full&sslrootcert=${ca}`);
      // The server really spoke TLS to us.
      const b = await openBackend(`${base}?sslmode=verify-full&sslrootcert=${ca}`);
      try {
        await b.get(["k"]);
        const ssl = await pg.psql(
          "kb",
          "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) " +
            "WHERE s.ssl AND a.application_name = 'keybound-auth'",
        );
        assert(Number(ssl.trim()) >= 1, `TLS connections: ${ssl}`);
      } finally {
        await b.close();
      }
    });

    await t.step("verify-full without the CA (system roots) is refused", async () => {
      const err = await refusal(openBackend(`${base}?sslmode=verify-full`));
      assert(err.message.startsWith("storage:"), err.message);
    });

    await t.step(
      "a certificate for another name: verify-ca accepts, verify-full refuses",
      async () => {
        await pg.reissueCertificate!("DNS:db.example");
        await works(`sslmode=verify-ca&sslrootcert=${ca}`);
        const err = await refusal(openBackend(`${base}?sslmode=verify-full&sslrootcert=${ca}`));
        assert(/127\.0\.0\.1|altnames|IP/i.test(err.message), err.message);
      },
    );
  },
});
