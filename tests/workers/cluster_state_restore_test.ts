/**
 * A point-in-time restore of the ClusterState Durable Object (Cloudflare's
 * PITR) winds its SQLite back while the auth Workers' isolates keep running
 * with what they cached, and clients keep the versions they read. Simulated
 * here in real workerd: the object's persisted storage is copied while workerd
 * is stopped and put back later; this process plays the isolate, keeping one
 * DoBackend (and the lock cache filed under it) across the restarts.
 *
 * A version handed out before the restore must never come back with other
 * content after it: with a counter in the object's SQLite, the restored
 * object repeated the counter's values.
 *
 * @module
 */
import type { Miniflare } from "miniflare";
import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import { createLockMutations, findLockInForce } from "../../src/server/locks.ts";
import { caOf, refreshCas } from "../../src/server/rotation/cache.ts";
import { rotateCa } from "../../src/server/rotation/rotate.ts";
import { caExport } from "../../src/server/rotation/status.ts";
import { silentLogger } from "../../src/util/log.ts";
import type { ClusterStateRpc } from "../../runtime-adapters/workers/cluster_state_do.ts";
import { CLUSTER_STATE_OBJECT_NAME, DoBackend } from "../../runtime-adapters/workers/do_backend.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import type { JsonValue } from "../../src/storage/backend.ts";
import { bundle, startWorker } from "./_harness.ts";

type Stub = ClusterStateRpc & {
  writeOldRow(key: string[], value: JsonValue, version: number): Promise<void>;
};

/** The ClusterState object on persisted storage that can be snapshotted and restored. */
class RestorableObject implements AsyncDisposable {
  #mf: Miniflare | undefined;
  #stub: Stub | undefined;
  /** One backend for the whole test, as an isolate keeps one. */
  readonly backend = new DoBackend(() => this.stub);

  private constructor(readonly script: string, readonly dir: string) {}

  static async start(script: string): Promise<RestorableObject> {
    const o = new RestorableObject(script, await Deno.makeTempDir({ prefix: "keybound-pitr-" }));
    await o.#start();
    return o;
  }

  get stub(): Stub {
    if (!this.#stub) throw new Error("workerd is stopped");
    return this.#stub;
  }

  get #live(): string {
    return `${this.dir}/live`;
  }

  async #start(): Promise<void> {
    const w = await startWorker(this.script, {
      durableObjects: { CLUSTER_STATE: "ClusterStateWithOldRows" },
      persistDir: this.#live,
    });
    this.#mf = w.mf;
    const ns = await w.mf.getDurableObjectNamespace(
      "CLUSTER_STATE",
    ) as unknown as DurableObjectNamespace<Stub>;
    this.#stub = ns.get(ns.idFromName(CLUSTER_STATE_OBJECT_NAME));
  }

  async #stop(): Promise<void> {
    this.#stub = undefined;
    await this.#mf?.dispose();
    this.#mf = undefined;
  }

  /** Copies the object's storage as it is now (workerd stopped meanwhile). */
  async snapshot(): Promise<string> {
    await this.#stop();
    const to = `${this.dir}/snapshot-${crypto.randomUUID()}`;
    await copyDir(this.#live, to);
    await this.#start();
    return to;
  }

  /** Puts `snapshot` back as the object's storage, as a point-in-time restore does. */
  async restore(snapshot: string): Promise<void> {
    await this.#stop();
    await Deno.remove(this.#live, { recursive: true });
    await copyDir(snapshot, this.#live);
    await this.#start();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stop();
    await Deno.remove(this.dir, { recursive: true });
  }
}

async function copyDir(from: string, to: string): Promise<void> {
  const out = await new Deno.Command("cp", { args: ["-a", from, to], stderr: "piped" }).output();
  assert(out.success, `cp -a failed: ${new TextDecoder().decode(out.stderr)}`);
}

const WORKER = new URL("./cluster_state_restore_worker.ts", import.meta.url);

Deno.test("ClusterState restore: a version read before a restore never matches other content after it", async () => {
  await using script = await bundle(WORKER);
  await using object = await RestorableObject.start(script.path);
  const b = object.backend;
  const key = ["k"];
  // Entries are read field by field: what miniflare hands to Deno is a proxy
  // into the workerd it came from, unusable once that workerd is stopped.
  assert((await b.commit({ checks: [], mutations: [{ type: "set", key, value: "v1" }] })).ok);
  const restorePoint = await object.snapshot();

  assert((await b.commit({ checks: [], mutations: [{ type: "set", key, value: "v2" }] })).ok);
  const seen = (await b.get(key))!;
  assertEquals(seen.value, "v2");
  const seenVersion = seen.version;

  await object.restore(restorePoint);
  assertEquals((await b.get(key))?.value, "v1");
  // The same number of commits as before the restore: a counter repeats its value here.
  assert((await b.commit({ checks: [], mutations: [{ type: "set", key, value: "v3" }] })).ok);
  const after = (await b.get(key))!;
  assertEquals(after.value, "v3");
  assertNotEquals(after.version, seenVersion, "a pre-restore version came back with other content");
  // A client still holding the pre-restore version must not overwrite v3.
  const stale = await b.commit({
    checks: [{ key, version: seenVersion }],
    mutations: [{ type: "set", key, value: "stale" }],
  });
  assertEquals(stale.ok, false);
  assertEquals((await b.get(key))?.value, "v3");
});

Deno.test("ClusterState restore: a lock created after a restore is seen by a lock cache filled before it", async () => {
  await using script = await bundle(WORKER);
  await using object = await RestorableObject.start(script.path);
  const ctx = await bootstrapCluster(object.backend, {
    clusterName: "pitr.example.com",
    log: silentLogger,
    version: "0.0.0-test",
  });
  const restorePoint = await object.snapshot();

  const first = createLockMutations(ctx, { target: { join_token: "t1" }, message: "before" });
  assert((await ctx.backend.commit({ checks: [], mutations: first.mutations })).ok);
  // Fills the lock cache, filed under the marker's version.
  assertEquals(
    (await findLockInForce(ctx, { join_token: "t1" }))?.metadata.name,
    first.lock.metadata.name,
  );

  await object.restore(restorePoint);
  const second = createLockMutations(ctx, { target: { join_token: "t2" }, message: "after" });
  assert((await ctx.backend.commit({ checks: [], mutations: second.mutations })).ok);
  assertEquals(
    (await findLockInForce(ctx, { join_token: "t2" }))?.metadata.name,
    second.lock.metadata.name,
    "the lock written after the restore was missed",
  );
  assertEquals(await findLockInForce(ctx, { join_token: "t1" }), null);
});

Deno.test("ClusterState restore: an instance holding CAs from before a restore loads those rotated after it", async () => {
  await using script = await bundle(WORKER);
  await using object = await RestorableObject.start(script.path);
  const options = { clusterName: "pitr.example.com", log: silentLogger, version: "0.0.0-test" };
  const ctx = await bootstrapCluster(object.backend, options);
  const restorePoint = await object.snapshot();
  const admin = { user: "admin" };
  // This instance starts a rotation: it holds the new key set, filed by version.
  await rotateCa(ctx, "user", { mode: "manual", phase: "init" }, admin);

  await object.restore(restorePoint);
  // Another instance, started after the restore, starts a rotation with other new keys.
  const other = await bootstrapCluster(new DoBackend(() => object.stub), options);
  await rotateCa(other, "user", { mode: "manual", phase: "init" }, admin);
  await refreshCas(ctx, 0);
  assertEquals(
    await caExport(caOf(ctx, "user")),
    await caExport(caOf(other, "user")),
    "the instance kept the user CA keys the restore removed",
  );
});

Deno.test("ClusterState: rows stored with a counter version still read and compare-and-swap", async () => {
  await using script = await bundle(WORKER);
  await using object = await RestorableObject.start(script.path);
  const b = object.backend;
  await object.stub.writeOldRow(["old", "a"], { n: 1 }, 7);
  await object.stub.writeOldRow(["old", "b"], { n: 2 }, 9);

  const a = (await b.get(["old", "a"]))!;
  assertEquals([[...a.key], a.value, a.version], [["old", "a"], { n: 1 }, "7"]);
  assertEquals((await b.list(["old"])).map((e) => e.version), ["7", "9"]);

  // A wrong version (another counter value, or a UUID) is refused, the right one accepted.
  for (const version of ["8", "9", "07", "7.0", crypto.randomUUID()]) {
    const r = await b.commit({
      checks: [{ key: ["old", "a"], version }],
      mutations: [{ type: "set", key: ["old", "a"], value: "wrong" }],
    });
    assertEquals(r.ok, false, `version ${version} matched counter version 7`);
  }
  assert(
    (await b.commit({
      checks: [{ key: ["old", "a"], version: "7" }, { key: ["old", "b"], version: "9" }],
      mutations: [
        { type: "set", key: ["old", "a"], value: { n: 3 } },
        { type: "delete", key: ["old", "b"] },
      ],
    })).ok,
    "the counter versions were refused",
  );
  const written = (await b.get(["old", "a"]))!;
  assertEquals(written.value, { n: 3 });
  assertNotEquals(written.version, "7");
  assertEquals(await b.get(["old", "b"]), null);
  // The new version is what the next compare-and-swap must name.
  assertEquals(
    (await b.commit({
      checks: [{ key: ["old", "a"], version: "7" }],
      mutations: [{ type: "delete", key: ["old", "a"] }],
    })).ok,
    false,
  );
  assert(
    (await b.commit({
      checks: [{ key: ["old", "a"], version: written.version }],
      mutations: [{ type: "delete", key: ["old", "a"] }],
    })).ok,
  );
});
