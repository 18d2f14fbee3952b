/**
 * Runs the backend conformance checks against every server Backend:
 * MemoryBackend, DenoKvBackend on a real file, and DoBackend + ClusterState
 * inside workerd (miniflare) on real Durable Object storage.
 *
 * @module
 */
import { MemoryBackend } from "../../src/storage/memory.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { KeyboundError } from "../../src/errors.ts";
import { bundle, startWorker } from "../workers/_harness.ts";
import { reportResults as report } from "./_report.ts";
import {
  type BackendCapabilities,
  type BackendFactory,
  runBackendConformance,
} from "./backend_conformance.ts";

async function conform(
  t: Deno.TestContext,
  factory: BackendFactory,
  capabilities: BackendCapabilities,
): Promise<void> {
  await report(t, await runBackendConformance(factory, capabilities));
}

Deno.test("backend conformance: MemoryBackend", async (t) => {
  await conform(t, () => Promise.resolve(new MemoryBackend()), { exactExpiry: true });
});

Deno.test("backend conformance: DenoKvBackend on a file", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-kv-" });
  let n = 0;
  try {
    // Deno KV deletes expired keys lazily; DenoKvBackend hides them itself.
    await conform(t, () => DenoKvBackend.open(`${dir}/state-${n++}.sqlite`), {
      exactExpiry: true,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DenoKvBackend.open that fails names the file and has code STORAGE_ERROR", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-kv-" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "");
    const err = await assertRejects(() => DenoKvBackend.open(`${dir}/file/auth.kv`), KeyboundError);
    assertEquals(err.code, "STORAGE_ERROR");
    assert(err.message.startsWith(`cannot open the Deno KV database "${dir}/file/auth.kv": `));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backend conformance: DoBackend on Durable Object storage in workerd", async (t) => {
  await using script = await bundle(
    new URL("../workers/backend_conformance_worker.ts", import.meta.url),
  );
  await using worker = await startWorker(script.path, {
    durableObjects: { CLUSTER_STATE: "ClusterState" },
  });
  const res = await worker.fetch("/");
  const body = await res.text();
  assert(res.ok, `conformance worker answered HTTP ${res.status}: ${body}`);
  await report(t, JSON.parse(body));
});
