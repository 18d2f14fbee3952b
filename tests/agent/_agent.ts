/**
 * Builds an agent (client state, identity service) over a storage and an
 * in-process cluster, the way `tbot start` does, for tests.
 *
 * @module
 */
import { type ClientState, StoredClientState } from "../../src/agent/client_state.ts";
import type { Clock } from "../../src/agent/clock.ts";
import { loadIdentity } from "../../src/agent/identity.ts";
import { IdentityService } from "../../src/agent/identity_service.ts";
import { joinTransport } from "../../src/agent/join_client.ts";
import { replayJournal } from "../../src/agent/journal.ts";
import type { AgentStorage } from "../../src/agent/storage.ts";
import { createLogger, silentLogger } from "../../src/util/log.ts";
import type { Cluster } from "./_cluster.ts";

/** An agent and what it was built from. */
export interface TestAgent {
  /** The identity service. */
  service: IdentityService;
  /** Its client state. */
  state: ClientState;
  /** Its storage. */
  storage: AgentStorage;
  /** Request bodies of every join call, in order (`begin` and `continue`). */
  requests: { path: string; body: Record<string, unknown> }[];
}

/** Options of {@linkcode openAgent}. */
export interface AgentOptions {
  /** Token name (default `example`). */
  token?: string;
  /** Registration secret. */
  secret?: string;
  /** Use this client state instead of the stored one. */
  state?: ClientState;
  /** Called with each join request before it is sent. */
  onRequest?: (path: string, body: Record<string, unknown>) => Promise<void> | void;
  /** Makes the server unreachable while it returns true. */
  down?: () => boolean;
  /**
   * How far the agent's clock is ahead of the cluster's. Moving only the
   * agent's clock makes its certificates look expired without skewing the
   * real-time `iat` of signed requests the server checks.
   */
  aheadMs?: number;
  /** Send join requests over the network to this base URL instead of in process. */
  baseUrl?: string;
  /** The fetch that reaches `baseUrl`. */
  fetch?: typeof fetch;
  /** Where the agent's log lines go (default: nowhere). */
  log?: { write(line: string): void };
}

/** Opens an agent on `storage` as a (re)started tbot would. */
export async function openAgent(
  cluster: Cluster,
  storage: AgentStorage,
  o: AgentOptions = {},
): Promise<TestAgent> {
  const token = o.token ?? "example";
  await replayJournal(storage);
  const state = o.state ?? await StoredClientState.load(storage, silentLogger, cluster.now);
  const requests: TestAgent["requests"] = [];
  const spy = (async (input: string | URL | Request, init?: RequestInit) => {
    if (o.down?.()) throw new TypeError("connection refused");
    const path = new URL(input instanceof Request ? input.url : input).pathname;
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : {};
    requests.push({ path, body });
    await o.onRequest?.(path, body);
    return (o.fetch ?? cluster.fetch)(input, init);
  }) as typeof fetch;
  const clock: Clock = {
    now: () => new Date(cluster.now().getTime() + (o.aheadMs ?? 0)),
    sleep: () => Promise.resolve(),
  };
  const service = new IdentityService({
    storage,
    clientState: state,
    tokenName: token,
    credentialTtlMs: 3600_000,
    registrationSecret: o.secret,
    ...joinTransport(o.baseUrl ?? "https://auth.test", spy),
    clock,
    log: o.log ? createLogger({ component: "tbot", write: o.log.write }) : silentLogger,
  }, await loadIdentity(storage, token, silentLogger));
  return { service, state, storage, requests };
}

/** A copy of a storage's files in a new storage of the same kind (a cloned disk). */
export async function copyStorage(from: AgentStorage, to: AgentStorage): Promise<void> {
  for (const name of await from.list()) {
    if (name === "lock") continue;
    await to.write(name, (await from.read(name))!);
  }
}
