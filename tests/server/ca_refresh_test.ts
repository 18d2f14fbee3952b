/**
 * `refreshCas(ctx, 0)` before signing: concurrent callers share one revision
 * read (single-flight), yet a caller never resolves on a read issued before
 * it called (review R15; the HA guarantee in src/server/rotation/cache.ts).
 */
import { assert, assertEquals } from "../_assert.ts";
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { IDENTITY_CERT_PATH } from "../../src/protocol/output_cert_messages.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { CA_REVISION_KEY } from "../../src/server/keys.ts";
import { refreshCas } from "../../src/server/rotation/cache.ts";
import type { Backend, Key } from "../../src/storage/backend.ts";
import { newCluster } from "./_cluster_fixture.ts";
import { newWorkloadCluster } from "./_workload_fixture.ts";

const isRevision = (key: Key) =>
  key.length === CA_REVISION_KEY.length && key.every((part, i) => part === CA_REVISION_KEY[i]);

/**
 * Wraps `ctx.backend` so each revision read is counted and, once it has read
 * its value, waits for `hold` (a slow or distant backend).
 */
function slowRevisionReads(ctx: ServerContext, hold: () => Promise<void>) {
  const inner = ctx.backend;
  const counts = { reads: 0 };
  const wrapped: Backend = {
    get: async (key) => {
      if (!isRevision(key)) return await inner.get(key);
      counts.reads++;
      const entry = await inner.get(key);
      await hold();
      return entry as never;
    },
    list: (prefix, options) => inner.list(prefix, options),
    commit: (op) => inner.commit(op),
    close: () => inner.close(),
  };
  ctx.backend = wrapped;
  return counts;
}

/** A gate: `wait()` blocks until `open()`. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { wait: () => opened, open: () => open() };
}

Deno.test("refreshCas(0): 20 concurrent callers while a check runs cost two revision reads", async () => {
  const { ctx } = await newCluster();
  const g = gate();
  const counts = slowRevisionReads(ctx, g.wait);
  const calls = Array.from({ length: 20 }, () => refreshCas(ctx, 0));
  // The first call's read is in flight; the other 19 joined one queued check.
  assertEquals(counts.reads, 1);
  g.open();
  await Promise.all(calls);
  assertEquals(counts.reads, 2);
  // A call after they settled reads again: nothing is cached across calls.
  await refreshCas(ctx, 0);
  assertEquals(counts.reads, 3);
});

Deno.test("refreshCas(0): a revision written while a read is in flight is seen by a later caller", async () => {
  const { ctx } = await newCluster();
  const g = gate();
  slowRevisionReads(ctx, g.wait);
  const before = ctx.cas.revision;
  // This check has read the old revision and is held there.
  const early = refreshCas(ctx, 0);
  await new Promise((r) => setTimeout(r, 0));
  // Another instance changes a CA (every CA write also writes the revision).
  const r = await ctx.backend.commit({
    checks: [],
    mutations: [{ type: "set", key: CA_REVISION_KEY, value: { changed_at: "later" } }],
  });
  assert(r.ok);
  const late = refreshCas(ctx, 0);
  g.open();
  await early;
  await late;
  assert(ctx.cas.revision !== before, "the late caller must not resolve on the early read");
  assertEquals(ctx.cas.revision, (await ctx.backend.get(CA_REVISION_KEY))!.version);
});

Deno.test("refreshCas(0): a failed check fails its callers and the next call reads again", async () => {
  const { ctx } = await newCluster();
  let fail = true;
  const counts = slowRevisionReads(ctx, () => {
    if (fail) return Promise.reject(new Error("backend unavailable"));
    return Promise.resolve();
  });
  const calls = Array.from({ length: 5 }, () => refreshCas(ctx, 0));
  const settled = await Promise.allSettled(calls);
  assert(settled.every((s) => s.status === "rejected"));
  assertEquals(counts.reads, 2);
  fail = false;
  await refreshCas(ctx, 0);
  assertEquals(counts.reads, 3);
});

Deno.test("identity-cert: 12 concurrent requests on a slow backend share revision reads", async () => {
  const { ctx, call } = await newWorkloadCluster();
  // 100 ms per revision read: before single-flight, 12 requests queued 12 reads in a row.
  const counts = slowRevisionReads(ctx, () => new Promise((r) => setTimeout(r, 100)));
  const bodies = await Promise.all(Array.from({ length: 12 }, async () => {
    const key = await generateKeyPair("ES256");
    return {
      public_tls_key: await exportSpkiPem(key.publicKey),
      public_ssh_key: await toAuthorizedKey(key.publicKey),
    };
  }));
  const answers = await Promise.all(bodies.map((b) => call(IDENTITY_CERT_PATH, b)));
  for (const a of answers) assertEquals(a.status, 200, JSON.stringify(a.json));
  // Arrivals spread over a loaded machine may need a third or fourth read; never one each.
  assert(counts.reads <= 6, `revision reads: ${counts.reads} for 12 requests`);
});
