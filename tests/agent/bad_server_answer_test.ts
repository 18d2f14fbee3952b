/**
 * A committed join whose answer the bot cannot use (a certificate for another
 * key: a misbehaving server or a proxy that rewrote the answer) is
 * `BAD_SERVER_RESPONSE`: retryable, never the caller's `BAD_PARAMETER`, and
 * crash-safe — the pending-join record stays, and the retry resumes the
 * committed join instead of joining again, so no recovery is consumed, the
 * generation stays consistent and no lock is created. A real in-process
 * auth service.
 */
import { isRetryable } from "../../src/agent/runner/policy.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { openAgent } from "./_agent.ts";
import { newCluster } from "./_cluster.ts";

Deno.test("bad server answer: a result for another key is BAD_SERVER_RESPONSE, retried by resuming, no recovery used", async () => {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const secret = (await cluster.createToken("example", "example", {
    recovery: { limit: 1, mode: "standard" },
  }))!;
  const storage = new MemoryStorage();
  const first = await (await openAgent(cluster, storage, { secret })).service.renew();

  // The server commits the refresh; the answer arrives with the certificate
  // swapped for another one (the user CA's own, which carries another key).
  let mangled = 0;
  const mangling = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await cluster.fetch(input, init);
    const path = new URL(input instanceof Request ? input.url : input).pathname;
    if (!path.endsWith("/continue") || !res.ok) return res;
    const body = await res.json();
    if (!body.result) return Response.json(body);
    mangled++;
    body.result.certificates.tls_cert = body.result.certificates.tls_ca_certs[0];
    return Response.json(body);
  }) as typeof fetch;
  const agent = await openAgent(cluster, storage, { fetch: mangling });
  const err = await assertRejects(() => agent.service.renew(), KeyboundError);
  assertEquals(mangled, 1);
  assertEquals(err.code, "BAD_SERVER_RESPONSE", err.message);
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
});
