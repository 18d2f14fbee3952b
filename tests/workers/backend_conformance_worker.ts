/**
 * Test Worker: runs the server backend conformance checks inside workerd
 * against real (SQLite-backed) Durable Object storage, one fresh
 * ClusterState object per check, and answers with the results as JSON.
 *
 * @module
 */
import {
  ClusterState,
  type ClusterStateRpc,
} from "../../runtime-adapters/workers/cluster_state_do.ts";
import { DoBackend } from "../../runtime-adapters/workers/do_backend.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import { runBackendConformance } from "../storage/backend_conformance.ts";

export { ClusterState };

interface Env {
  CLUSTER_STATE: DurableObjectNamespace<ClusterStateRpc>;
}

export default {
  async fetch(_request: Request, env: Env): Promise<Response> {
    const ns = env.CLUSTER_STATE;
    const results = await runBackendConformance(
      () => {
        const id = ns.newUniqueId();
        return Promise.resolve(new DoBackend(() => ns.get(id)));
      },
      { exactExpiry: true },
    );
    return Response.json(results);
  },
};
