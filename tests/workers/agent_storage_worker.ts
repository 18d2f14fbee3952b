/**
 * Test Worker: runs the agent-storage conformance checks inside a Durable
 * Object in workerd, against DoAgentStorage on real (SQLite-backed) DO
 * storage, and answers with the results as JSON. With `?preloaded`, every
 * storage the checks get has read its files in one call first
 * (`DoAgentStorage.preload`, as the bot does at wake): it must behave the same.
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
  /** Runs the suite; `preloaded`: on storages that preloaded their files (never released). */
  async conformance(preloaded = false): Promise<CaseResult[]> {
    let n = 0;
    const open = async (prefix: string) => {
      const storage = new DoAgentStorage(this.ctx.storage, prefix);
      if (preloaded) await storage.preload();
      return storage;
    };
    return await runAgentStorageConformance(async () => {
      const prefix = `case-${n++}/`;
      return {
        storage: await open(prefix),
        reopen: () => open(prefix),
        dispose: async () => {
          const keys = [...(await this.ctx.storage.list({ prefix })).keys()];
          if (keys.length) await this.ctx.storage.delete(keys);
        },
      };
    }, { persistent: true, exclusiveLock: true });
  }
}

interface Env {
  AGENT_STORAGE_HOST: DurableObjectNamespace<
    { conformance(preloaded?: boolean): Promise<CaseResult[]> }
  >;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const ns = env.AGENT_STORAGE_HOST;
    const preloaded = new URL(request.url).searchParams.has("preloaded");
    return Response.json(await ns.get(ns.newUniqueId()).conformance(preloaded));
  },
};
