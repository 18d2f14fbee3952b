/**
 * Answers a bot cannot take at face value after it sent a challenge solution
 * (the server may have committed the join): the pending-join record must
 * stay, and the next renewal resumes the committed join instead of joining
 * again — no recovery consumed, the generation consistent, no lock. A real
 * in-process auth service.
 *
 * - A result the bot cannot use (a certificate for another key: a
 *   misbehaving server or a proxy that rewrote it) is `BAD_SERVER_RESPONSE`:
 *   retryable, never the caller's `BAD_PARAMETER` (review R9).
 * - A proxy or the runtime's own HTTP client delivers the solution twice:
 *   the first copy commits, the bot sees `SESSION_INVALID` (or, on a backend
 *   whose reads tore, `UNEXPECTED_BACKEND_STATE`) for the second (review4 S1,
 *   review5 V1/V12); dropping the record made the next refresh a
 *   `GENERATION_MISMATCH` and locked the token. The renewal resumes at once.
 */
import { isRetryable } from "../../src/agent/runner/policy.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { type ErrorCode, KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { openAgent, type TestAgent } from "./_agent.ts";
import type { BotIdentity } from "../../src/agent/identity.ts";
import { type Cluster, clusterWithBot } from "./_cluster.ts";

const BEGIN = "/v1/join/bound-keypair/begin";
const CONTINUE = "/v1/join/bound-keypair/continue";
const RESUME = "/v1/join/bound-keypair/resume";
const pathOf = (input: string | URL | Request) =>
  new URL(input instanceof Request ? input.url : input).pathname;

/** A cluster with one bot that joined (one recovery allowed, spent by that join). */
async function joinedBot() {
  const { cluster, secret } = await clusterWithBot();
  const storage = new MemoryStorage();
  const first = await (await openAgent(cluster, storage, { secret })).service.renew();
  return { cluster, storage, first };
}

/**
 * `id` is the refresh the server committed, got by a resume: same instance,
 * one generation on, no pending record, no recovery consumed, no lock; and
 * `agent` carries on with the next refresh.
 */
async function assertCommittedJoinResumed(
  bot: Awaited<ReturnType<typeof joinedBot>>,
  id: BotIdentity,
  agent: TestAgent,
): Promise<void> {
  const { cluster, storage, first } = bot;
  assertEquals(id.botInstanceId, first.botInstanceId, "the same bot instance");
  assertEquals(id.generation, first.generation + 1, "the generation the server committed");
  assertEquals(await readText(storage, STORAGE_FILES.pendingJoin), null);
  const status = (await cluster.token("example")).status!.bound_keypair!;
  assertEquals(status.recovery_count, 1, "no recovery consumed");
  assertEquals(await cluster.locks(), []);
  assertEquals((await agent.service.renew()).generation, first.generation + 2);
}

/**
 * A joined bot; then one refresh through `fetch`, which must fail with
 * `code` and keep the pending join; then a restarted bot that resumes.
 */
async function refreshFailsThenResumes(
  fetchOf: (cluster: Cluster) => typeof fetch,
  code: ErrorCode,
): Promise<void> {
  const { cluster, storage, first } = await joinedBot();

  const agent = await openAgent(cluster, storage, { fetch: fetchOf(cluster) });
  const err = await assertRejects(() => agent.service.renew(), KeyboundError);
  assertEquals(err.code, code, err.message);
  assert(isRetryable(err), "the runner retries it");
  assert(await readText(storage, STORAGE_FILES.pendingJoin), "the pending join stays");
  assertEquals(agent.service.identity?.generation, first.generation, "nothing half-applied");

  // The retry (here a restarted bot, as after a crash) resumes the committed join.
  const next = await openAgent(cluster, storage);
  const id = await next.service.renew();
  assertEquals(next.requests.map((r) => r.path), [RESUME]);
  await assertCommittedJoinResumed({ cluster, storage, first }, id, next);
}

Deno.test("bad server answer: a result for another key is BAD_SERVER_RESPONSE, retried by resuming, no recovery used", async () => {
  let mangled = 0;
  await refreshFailsThenResumes(
    (cluster) =>
      (async (input: string | URL | Request, init?: RequestInit) => {
        const res = await cluster.fetch(input, init);
        if (!pathOf(input).endsWith("/continue") || !res.ok) return res;
        const body = await res.json();
        if (body.result) {
          // The server committed; the certificate arrives swapped for one with another key.
          mangled++;
          body.result.certificates.tls_cert = body.result.certificates.tls_ca_certs[0];
        }
        return Response.json(body);
      }) as typeof fetch,
    "BAD_SERVER_RESPONSE",
  );
  assertEquals(mangled, 1);
});

/**
 * A joined bot; then one refresh through `fetch` whose solution `continue`
 * is delivered twice (the copy that commits, then the one whose answer the
 * bot sees, `answer` of it): the same renewal resumes the committed join at
 * once — no error, no recovery consumed, no lock.
 */
async function duplicatedContinueResumesAtOnce(
  answer: (
    cluster: Cluster,
    input: string | URL | Request,
    init?: RequestInit,
  ) => Promise<Response>,
): Promise<number> {
  const { cluster, storage, first } = await joinedBot();
  let replayed = 0;
  const duplicating = (async (input: string | URL | Request, init?: RequestInit) => {
    const solution = typeof init?.body === "string" && init.body.includes("challenge_solution");
    if (!solution) return cluster.fetch(input, init);
    replayed++;
    await (await cluster.fetch(input, init)).body?.cancel(); // the copy that commits
    return answer(cluster, input, init); // the copy whose answer the bot sees
  }) as typeof fetch;
  const agent = await openAgent(cluster, storage, { fetch: duplicating });
  const id = await agent.service.renew();
  assertEquals(agent.requests.map((r) => r.path), [BEGIN, CONTINUE, RESUME]);
  // The next refresh (its continue delivered twice as well) carries on.
  await assertCommittedJoinResumed({ cluster, storage, first }, id, agent);
  return replayed;
}

Deno.test("replayed continue: SESSION_INVALID after a solution resumes the committed join in the same renewal, no lock", async () => {
  const replayed = await duplicatedContinueResumesAtOnce((cluster, input, init) =>
    cluster.fetch(input, init)
  );
  assertEquals(replayed, 2);
});

Deno.test("replayed continue: UNEXPECTED_BACKEND_STATE after a solution (a torn read of the racing copy) resumes too", async () => {
  const replayed = await duplicatedContinueResumesAtOnce(() =>
    Promise.resolve(
      Response.json(
        new KeyboundError("UNEXPECTED_BACKEND_STATE", "the token changed during the join"),
        { status: 409 },
      ),
    )
  );
  assertEquals(replayed, 2);
});

Deno.test("SESSION_INVALID after a solution that nothing committed: one resume, RESUME_NOT_FOUND drops the record, the error stands", async () => {
  const { cluster, storage, first } = await joinedBot();
  const refusing = ((input: string | URL | Request, init?: RequestInit) => {
    const solution = typeof init?.body === "string" && init.body.includes("challenge_solution");
    if (!solution) return cluster.fetch(input, init);
    // Never reaches the server: an expired session, say.
    return Promise.resolve(
      Response.json(new KeyboundError("SESSION_INVALID", "join session expired"), { status: 400 }),
    );
  }) as typeof fetch;
  const agent = await openAgent(cluster, storage, { fetch: refusing });
  const err = await assertRejects(() => agent.service.renew(), KeyboundError);
  assertEquals(err.code, "SESSION_INVALID");
  assertEquals(agent.requests.map((r) => r.path), [BEGIN, CONTINUE, RESUME], "one resume only");
  assertEquals(await readText(storage, STORAGE_FILES.pendingJoin), null, "the record went");
  assertEquals(agent.service.identity?.generation, first.generation);
  // The next renewal is an ordinary refresh.
  const next = await openAgent(cluster, storage);
  assertEquals((await next.service.renew()).generation, first.generation + 1);
  assertEquals(next.requests.map((r) => r.path), [BEGIN, CONTINUE]);
  assertEquals(await cluster.locks(), []);
});
