/**
 * Test Worker that only hosts the ClusterState Durable Object, for tests that
 * drive it over RPC from Deno (see ./_test_backend.ts).
 *
 * @module
 */
export { ClusterState } from "../../runtime-adapters/workers/cluster_state_do.ts";

export default {
  fetch(): Response {
    return new Response("ClusterState host", { status: 404 });
  },
};
