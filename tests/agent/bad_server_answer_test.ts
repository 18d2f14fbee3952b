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
 * - A proxy that delivers the solution twice: the first copy commits, the
 *   bot sees `SESSION_INVALID` for the second (review4 S1); dropping the
 *   record made the next refresh a `GENERATION_MISMATCH` and locked the token.
 */
import { isRetryable } from "../../src/agent/runner/policy.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { type ErrorCode, KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { openAgent } from "./_agent.ts";
import { newCluster } from "./_cluster.ts";

const pathOf = (input: string | URL | Request) =>
  new URL(input instanceof Request ? input.url : input).pathname;

/**
 * A joined bot; then one refresh through `fetch`, which must fail with
 * `code` and keep the pending join; then a restarted bot that resumes.
 */
async function refreshFailsThenResumes(
  fetchOf: (cluster: Awaited<ReturnType<typeof newCluster>>) => typeof fetch,
  code: ErrorCode,
): Promise<void> {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const secret = (await cluster.createToken("example", "example", {
    recovery: { limit: 1, mode: "standard" },
  }))!;
  const storage = new MemoryStorage();
  const first = await (await openAgent(cluster, storage, { secret })).service.renew();

  const agent = await openAgent(cluster, storage, { fetch: fetchOf(cluster) });
  const err = await assertRejects(() => agent.service.renew(), KeyboundError);
  assertEquals(err.code, code, err.message);
  assert(isRetryable(err), "the runner retries it");
  assert(await readText(storage, STORAGE_FILES.pendingJoin), "the pending join stays");
  assertEquals(agent.service.identity?.generation, first.generation, "nothing half-applied");

  // The retry (here a restarted bot, as after a crash) resumes the committed join.
  const next = await openAgent(cluster, storage);
  const id = await next.service.renew();
  assertEquals(next.requests.map((r) => r.path), ["/v1/join/bound-keypair/resume"]);
  assertEquals(id.botInstanceId, first.botInstanceId, "the same bot instance");
  assertEquals(id.generation, first.generation + 1, "the generation the server committed");
  assertEquals(await readText(storage, STORAGE_FILES.pendingJoin), null);
  const status = (await cluster.token("example")).status!.bound_keypair!;
  assertEquals(status.recovery_count, 1, "no recovery consumed");
  assertEquals(await cluster.locks(), []);
  // And it carries on with ordinary refreshes.
  assertEquals((await next.service.renew()).generation, first.generation + 2);
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

Deno.test("replayed continue: SESSION_INVALID after a solution keeps the pending join; the next renewal resumes, no lock", async () => {
  let replayed = 0;
  await refreshFailsThenResumes(
    (cluster) =>
      (async (input: string | URL | Request, init?: RequestInit) => {
        const solution = typeof init?.body === "string" && init.body.includes("challenge_solution");
        if (!solution) return cluster.fetch(input, init);
        replayed++;
        await (await cluster.fetch(input, init)).body?.cancel(); // the copy that commits
        return cluster.fetch(input, init); // the copy whose answer the bot sees
      }) as typeof fetch,
    "SESSION_INVALID",
  );
  assertEquals(replayed, 1);
});
