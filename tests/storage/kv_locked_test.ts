/**
 * A Deno KV file whose write lock another process holds: a commit that
 * checks versions gets SQLite's "database is locked" without waiting for
 * the lock, is retried for about 2 s, and then fails with
 * `BACKEND_UNAVAILABLE` (nothing applied, safe to retry) instead of an
 * untyped error that the server would answer as an internal one. The lock
 * holder is a second SQLite connection to the real file, as an `sqlite3`
 * shell in `BEGIN IMMEDIATE` would be.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { KeyboundError } from "../../src/errors.ts";
import { assertEquals, assertRejects } from "../_assert.ts";

Deno.test("Deno KV: a commit that stays locked is BACKEND_UNAVAILABLE and applies nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-kv-locked-" });
  const path = `${dir}/auth.kv`;
  const backend = await DenoKvBackend.open(path);
  const holder = new DatabaseSync(path);
  try {
    await backend.commit({ checks: [], mutations: [{ type: "set", key: ["k"], value: 1 }] });
    const before = await backend.get(["k"]);
    holder.exec("BEGIN IMMEDIATE");
    const err = await assertRejects(
      () =>
        backend.commit({
          checks: [{ key: ["k"], version: before!.version }],
          mutations: [{ type: "set", key: ["k"], value: 2 }],
        }),
      KeyboundError,
    );
    assertEquals(err.code, "BACKEND_UNAVAILABLE");
    holder.exec("ROLLBACK");
    // Nothing applied: the version read before still holds, and the same
    // commit succeeds once the lock is gone.
    assertEquals((await backend.get(["k"]))?.value, 1);
    const retried = await backend.commit({
      checks: [{ key: ["k"], version: before!.version }],
      mutations: [{ type: "set", key: ["k"], value: 2 }],
    });
    assertEquals(retried.ok, true);
    assertEquals((await backend.get(["k"]))?.value, 2);
  } finally {
    holder.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
