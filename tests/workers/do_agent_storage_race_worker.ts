/**
 * Test Worker: `DoAgentStorage.preload` with a write, a group write or a
 * delete issued while its `list` is in flight, in a Durable Object in
 * workerd on real storage. Answers, per case, what the preloaded storage
 * reads and what a fresh storage (no copy) reads: they must agree.
 *
 * @module
 */
import { DurableObject } from "../../runtime-adapters/workers/durable_object.ts";
import { DoAgentStorage } from "../../runtime-adapters/workers/do_agent_storage.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

/** One case: what the preloaded storage reads, and what is stored. */
export interface RaceResult {
  /** The case. */
  name: string;
  /** File "a" read through the storage that preloaded. */
  read: string | null;
  /** File "a" read by a fresh storage on the same prefix. */
  stored: string | null;
}

/** Runs the cases, each on a fresh prefix of this object's storage. */
export class PreloadRaceHost extends DurableObject<unknown> {
  /** Each change is issued after `preload` starts and before its `list` answers. */
  async race(): Promise<RaceResult[]> {
    const changes: Record<string, (s: DoAgentStorage) => Promise<void>> = {
      write: (s) => s.write("a", "new"),
      writeGroup: (s) => s.writeGroup({ a: "new" }),
      delete: (s) => s.delete("a"),
    };
    const results: RaceResult[] = [];
    for (const [name, change] of Object.entries(changes)) {
      const prefix = `race-${name}/`;
      const storage = new DoAgentStorage(this.ctx.storage, prefix);
      await storage.write("a", "old");
      const preloading = storage.preload();
      await change(storage);
      await preloading;
      results.push({
        name,
        read: text(await storage.read("a")),
        stored: text(await new DoAgentStorage(this.ctx.storage, prefix).read("a")),
      });
    }
    return results;
  }
}

interface Env {
  PRELOAD_RACE_HOST: DurableObjectNamespace<{ race(): Promise<RaceResult[]> }>;
}

export default {
  async fetch(_request: Request, env: Env): Promise<Response> {
    const host = env.PRELOAD_RACE_HOST.get(env.PRELOAD_RACE_HOST.newUniqueId());
    return Response.json(await host.race());
  },
};
