/**
 * A Deno KV file whose write lock another process holds: a commit that
 * checks versions gets SQLite's "database is locked" without waiting for
 * the lock, is retried for about 2 s, and then fails with
 * `BACKEND_UNAVAILABLE` (nothing applied, safe to retry) instead of an
 * untyped error that the server would answer as an internal one. A commit
 * that checks nothing (an audit event) is bounded the same way: Deno KV
 * would wait for the lock without limit, and queue every later write
 * behind it. The lock
 * holder is a second SQLite connection to the real file, as an `sqlite3`
 * shell in `BEGIN IMMEDIATE` would be.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";

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

Deno.test("Deno KV: an unchecked commit, and one queued behind it, are bounded too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-kv-locked-" });
  const path = `${dir}/auth.kv`;
  const backend = await DenoKvBackend.open(path);
  const holder = new DatabaseSync(path);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await backend.commit({ checks: [], mutations: [{ type: "set", key: ["k"], value: 1 }] });
    const before = await backend.get(["k"]);
    holder.exec("BEGIN IMMEDIATE");
    const unchecked = backend.commit({
      checks: [],
      mutations: [{ type: "set", key: ["audit"], value: "event" }],
    });
    const queued = backend.commit({
      checks: [{ key: ["k"], version: before!.version }],
      mutations: [{ type: "set", key: ["k"], value: 2 }],
    });
    // Without the bound both wait for the lock, which this test holds: end
    // it after 20 s so such a failure is reported, not hung.
    const hung = new Promise<"hung">((resolve) => {
      timer = setTimeout(() => {
        holder.exec("ROLLBACK");
        resolve("hung");
      }, 20_000);
    });
    const outcomes = await Promise.race([
      Promise.allSettled([unchecked, queued]),
      hung,
    ]);
    clearTimeout(timer);
    assert(outcomes !== "hung", "a commit waited for the lock without limit");
    for (const o of outcomes) {
      assertEquals(o.status, "rejected");
      const err = (o as PromiseRejectedResult).reason;
      assert(err instanceof KeyboundError, String(err));
      assertEquals(err.code, "BACKEND_UNAVAILABLE");
    }
    holder.exec("ROLLBACK");
    assertEquals(await backend.get(["audit"]), null);
    assertEquals((await backend.get(["k"]))?.value, 1);
  } finally {
    clearTimeout(timer);
    holder.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
