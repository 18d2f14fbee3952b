/**
 * Runs the agent-storage conformance checks against every adapter: memory,
 * Deno KV on a real file, and Durable Object storage inside workerd.
 *
 * @module
 */
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { parseKek, SealedStorage } from "../../src/agent/sealed_keys.ts";
import { silentLogger } from "../../src/util/log.ts";
import { DirectoryStorage } from "../../runtime-adapters/deno/dir_storage.ts";
import { DenoKvAgentStorage } from "../../runtime-adapters/deno/kv_agent_storage.ts";
import { assert } from "../_assert.ts";
import { bundle, startWorker } from "../workers/_harness.ts";
import { reportResults } from "./_report.ts";
import { runAgentStorageConformance } from "./agent_storage_conformance.ts";

Deno.test("agent storage conformance: memory", async (t) => {
  await reportResults(
    t,
    await runAgentStorageConformance(() => {
      const storage = new MemoryStorage();
      return Promise.resolve({
        storage,
        reopen: () => Promise.resolve(new MemoryStorage()),
        dispose: () => Promise.resolve(),
      });
    }, { persistent: false, exclusiveLock: false }),
  );
});

Deno.test("agent storage conformance: directory", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "keybound-dir-agent-" });
  let n = 0;
  try {
    await reportResults(
      t,
      await runAgentStorageConformance(async () => {
        const path = `${root}/bot-${n++}`;
        const storage = new DirectoryStorage(path);
        await storage.init();
        return {
          storage,
          reopen: async () => {
            const again = new DirectoryStorage(path);
            await again.init();
            return again;
          },
          dispose: () => Promise.resolve(),
        };
      }, { persistent: true, exclusiveLock: true }),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("agent storage conformance: sealed (KEK) over a directory", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "keybound-sealed-agent-" });
  const kek = await parseKek("11".repeat(32), "test KEK");
  const sealed = async (path: string) => {
    const s = new SealedStorage(new DirectoryStorage(path), {
      kek,
      context: "token:conformance",
      log: silentLogger,
    });
    await s.init();
    return s;
  };
  let n = 0;
  try {
    await reportResults(
      t,
      await runAgentStorageConformance(async () => {
        const path = `${root}/bot-${n++}`;
        return {
          storage: await sealed(path),
          reopen: () => sealed(path),
          dispose: () => Promise.resolve(),
        };
      }, { persistent: true, exclusiveLock: true }),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("agent storage conformance: Deno KV on a file", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-kv-agent-" });
  let n = 0;
  try {
    await reportResults(
      t,
      await runAgentStorageConformance(async () => {
        const path = `${dir}/tbot-${n++}.kv`;
        const opened = [await DenoKvAgentStorage.open(path)];
        return {
          storage: opened[0],
          reopen: async () => {
            opened.push(await DenoKvAgentStorage.open(path));
            return opened[opened.length - 1];
          },
          dispose: () => Promise.resolve(opened.forEach((s) => s.close())),
        };
      }, { persistent: true, exclusiveLock: true }),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent storage conformance: Durable Object storage in workerd", async (t) => {
  await using script = await bundle(new URL("../workers/agent_storage_worker.ts", import.meta.url));
  await using worker = await startWorker(script.path, {
    durableObjects: { AGENT_STORAGE_HOST: "AgentStorageHost" },
  });
  const res = await worker.fetch("/");
  const body = await res.text();
  assert(res.ok, `conformance worker answered HTTP ${res.status}: ${body}`);
  await reportResults(t, JSON.parse(body));
});
