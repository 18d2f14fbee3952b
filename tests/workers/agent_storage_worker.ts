/**
 * Test Worker: runs the agent-storage conformance checks inside a Durable
 * Object in workerd, against DoAgentStorage on real (SQLite-backed) DO
 * storage, and answers with the results as JSON.
 *
 * @module
 */
import { DurableObject } from "../../runtime-adapters/workers/durable_object.ts";
import { DoAgentStorage } from "../../runtime-adapters/workers/do_agent_storage.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import type { CaseResult } from "../storage/_results.ts";
import { runAgentStorageConformance } from "../storage/agent_storage_conformance.ts";

/** Hosts the checks; each location is a fresh key prefix in this object's storage. */
export class AgentStorageHost extends DurableObject<unknown> {
  /** Runs the suite. */
  async conformance(): Promise<CaseResult[]> {
    let n = 0;
    return await runAgentStorageConformance(() => {
      const prefix = `case-${n++}/`;
      return Promise.resolve({
        storage: new DoAgentStorage(this.ctx.storage, prefix),
        reopen: () => Promise.resolve(new DoAgentStorage(this.ctx.storage, prefix)),
        dispose: async () => {
          const keys = [...(await this.ctx.storage.list({ prefix })).keys()];
          if (keys.length) await this.ctx.storage.delete(keys);
        },
      });
    }, { persistent: true, exclusiveLock: true });
  }
}

interface Env {
  AGENT_STORAGE_HOST: DurableObjectNamespace<{ conformance(): Promise<CaseResult[]> }>;
}

export default {
  async fetch(_request: Request, env: Env): Promise<Response> {
    const ns = env.AGENT_STORAGE_HOST;
    return Response.json(await ns.get(ns.newUniqueId()).conformance());
  },
};
