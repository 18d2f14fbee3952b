/**
 * In-process helpers for resume tests: a fetch into the real auth app that
 * can drop the answer of a committed join, and an agent joined through it.
 *
 * @module
 */
import type { AgentStorage } from "../../src/agent/storage.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { openAgent } from "../agent/_agent.ts";
import { type Cluster, newCluster } from "../agent/_cluster.ts";

/** A fetch into `cluster` that throws, after the server answered, when armed. */
export function droppingFetch(cluster: Cluster): { fetch: typeof fetch; drop(): void } {
  let armed = false;
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await cluster.fetch(input, init);
    const path = new URL(input instanceof Request ? input.url : input).pathname;
    if (!armed || !path.endsWith("/continue") || !res.ok) return res;
    const body = await res.clone().json() as { result?: unknown };
    if (!body.result) return res;
    armed = false;
    throw new TypeError("connection reset (answer dropped)");
  }) as typeof fetch;
  return { fetch: f, drop: () => void (armed = true) };
}

/** A cluster with bot `example`, token `example` (recovery limit `limit`) and a joined agent. */
export async function joinedThroughDrop(limit = 3): Promise<{
  cluster: Cluster;
  storage: AgentStorage;
  secret: string;
  drop: ReturnType<typeof droppingFetch>;
}> {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const secret = (await cluster.createToken("example", "example", {
    recovery: { limit, mode: "standard" },
  }))!;
  const storage = new MemoryStorage();
  const drop = droppingFetch(cluster);
  await (await openAgent(cluster, storage, { secret, fetch: drop.fetch })).service.renew();
  return { cluster, storage, secret, drop };
}
