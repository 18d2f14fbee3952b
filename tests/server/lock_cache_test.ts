/**
 * Lock checks reuse the parsed lock set while the lock-change marker keeps its
 * version; every write path of a lock must therefore move the marker. These
 * tests write through each path after a check has filled the cache and
 * expect the next check to see the change.
 */
import { assert, assertEquals } from "../_assert.ts";
import type { Lock } from "../../src/resources/schemas.ts";
import { resourceKey } from "../../src/server/keys.ts";
import {
  createLockMutations,
  findLockInForce,
  locksChangedMutation,
} from "../../src/server/locks.ts";
import { deleteResource, putResource } from "../../src/server/resources/mod.ts";
import type { JsonValue } from "../../src/storage/backend.ts";
import { newCluster } from "./_cluster_fixture.ts";

const ADMIN = { user: "admin" };

function lock(name: string, target: Lock["spec"]["target"], expires?: string): Lock {
  return {
    kind: "lock",
    version: "v2",
    metadata: { name },
    spec: { target, message: "test", ...(expires ? { expires } : {}) },
  };
}

Deno.test("lock cache: admin API create and delete are seen by the next check", async () => {
  const { ctx } = await newCluster();
  const subject = { user: "bot-a", bot_instance_id: "i-1" };
  assertEquals(await findLockInForce(ctx, subject), null); // fills the cache
  await putResource(ctx, lock("l1", { user: "bot-a" }), "create", ADMIN);
  assertEquals((await findLockInForce(ctx, subject))?.metadata.name, "l1");
  await putResource(ctx, lock("l1", { user: "bot-b" }), "upsert", ADMIN);
  assertEquals(await findLockInForce(ctx, subject), null);
  await putResource(ctx, lock("l1", { user: "bot-a" }), "upsert", ADMIN);
  assert(await findLockInForce(ctx, subject));
  await deleteResource(ctx, "lock", "l1", ADMIN);
  assertEquals(await findLockInForce(ctx, subject), null);
});

Deno.test("lock cache: a lock raised by the join server and one from another process are seen", async () => {
  const { ctx } = await newCluster();
  assertEquals(await findLockInForce(ctx, { join_token: "t1" }), null);
  const { mutations } = createLockMutations(ctx, { target: { join_token: "t1" }, message: "m" });
  assert((await ctx.backend.commit({ checks: [], mutations })).ok);
  assert(await findLockInForce(ctx, { join_token: "t1" }));

  // Another auth process on the same backend writes the lock and the marker.
  assertEquals(await findLockInForce(ctx, { bot_instance_id: "i-9" }), null);
  const other = lock("from-elsewhere", { bot_instance_id: "i-9" });
  assert(
    (await ctx.backend.commit({
      checks: [],
      mutations: [
        {
          type: "set",
          key: resourceKey("lock", other.metadata.name),
          value: other as unknown as JsonValue,
        },
        locksChangedMutation(ctx),
      ],
    })).ok,
  );
  assertEquals(
    (await findLockInForce(ctx, { bot_instance_id: "i-9" }))?.metadata.name,
    "from-elsewhere",
  );
});

Deno.test("lock cache: expiry is judged at check time, not when the set was loaded", async () => {
  const { ctx, setNow } = await newCluster();
  const t0 = ctx.now();
  const expires = new Date(t0.getTime() + 60_000).toISOString();
  await putResource(ctx, lock("short", { user: "bot-a" }, expires), "create", ADMIN);
  // Loaded while the lock has expired: it must stay in the set, not be filtered out.
  setNow(new Date(t0.getTime() + 120_000));
  assertEquals(await findLockInForce(ctx, { user: "bot-a" }), null);
  setNow(t0);
  assert(await findLockInForce(ctx, { user: "bot-a" }));
});
