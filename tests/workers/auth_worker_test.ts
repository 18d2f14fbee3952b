/**
 * The auth service as a Worker, in real workerd (miniflare) with its state in
 * a SQLite-backed ClusterState Durable Object: ping, the one-time admin
 * bootstrap route, then the join integration flow (admin API → first join
 * with a registration secret → refresh) through the same clients tctl and
 * tbot use.
 *
 * @module
 */
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { fromPem } from "../../src/util/encoding.ts";
import { ADMIN_BOOTSTRAP_PATH } from "../../runtime-adapters/workers/admin_bootstrap.ts";
import { assert, assertEquals } from "../_assert.ts";
import { bundle, type RunningWorker, startWorker } from "./_harness.ts";
import { provisionBot } from "./_join_fixture.ts";
import { MemoryKeyStore } from "../_key_store.ts";

const BOOTSTRAP_TOKEN = "a".repeat(16) + crypto.randomUUID().replaceAll("-", "");
const BASE = "http://worker.test";

function workerFetch(worker: RunningWorker): typeof fetch {
  return ((input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    return worker.fetch(url.pathname + url.search, init);
  }) as typeof fetch;
}

async function bootstrapAdmin(worker: RunningWorker, token: string): Promise<Response> {
  return await worker.fetch(ADMIN_BOOTSTRAP_PATH, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
}

Deno.test("auth service as a Worker: ping, admin bootstrap, first join and refresh", async (t) => {
  await using script = await bundle(
    new URL("../../runtime-adapters/workers/auth_worker.ts", import.meta.url),
  );
  await using worker = await startWorker(script.path, {
    durableObjects: { CLUSTER_STATE: "ClusterState" },
    bindings: { CLUSTER_NAME: "edge.example", KEYBOUND_ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP_TOKEN },
  });
  const doFetch = workerFetch(worker);

  await t.step("GET /v1/ping answers with the cluster name and CA pin", async () => {
    const res = await worker.fetch("/v1/ping");
    const body = await res.json();
    assertEquals(res.status, 200);
    assertEquals(body.cluster_name, "edge.example");
    assert(/^sha256:[0-9a-f]{64}$/.test(body.ca_pin), `ca_pin ${body.ca_pin}`);
  });

  await t.step("admin bootstrap refuses a wrong token and a GET", async () => {
    const wrong = await bootstrapAdmin(worker, "b".repeat(48));
    assertEquals(wrong.status, 401);
    assertEquals((await wrong.json()).error.code, "UNAUTHENTICATED");
    const get = await worker.fetch(ADMIN_BOOTSTRAP_PATH, {
      headers: { authorization: `Bearer ${BOOTSTRAP_TOKEN}` },
    });
    assertEquals(get.status, 400);
    await get.body?.cancel();
  });

  let api!: AdminApiClient;
  await t.step("admin bootstrap issues one identity file, once", async () => {
    const first = await bootstrapAdmin(worker, BOOTSTRAP_TOKEN);
    assertEquals(first.status, 200);
    assertEquals(first.headers.get("cache-control"), "no-store");
    const id = await parseIdentityFile(await first.text());
    api = new AdminApiClient({
      baseUrl: BASE,
      signer: { certDer: id.certDer, privateKey: id.privateKey },
      fetch: doFetch,
    });
    const again = await bootstrapAdmin(worker, BOOTSTRAP_TOKEN);
    assertEquals(again.status, 403);
    assertEquals((await again.json()).error.code, "ACCESS_DENIED");
    assertEquals((await api.status()).cluster_name, "edge.example");
  });

  await t.step("a bot joins with its registration secret, then refreshes", async () => {
    const secret = await provisionBot(api, "edge-bot");
    const keyStore = new MemoryKeyStore();
    const subjectKey = await generateKeyPair("EdDSA");
    const first = await joinBoundKeypair({
      baseUrl: BASE,
      fetch: doFetch,
      tokenName: "edge-bot",
      subjectKey,
      ttlSeconds: 3600,
      initialJoinSecret: secret,
      keyStore,
    });
    assertEquals(first.bot_name, "edge-bot");
    assertEquals(first.generation, 1);
    assertEquals(keyStore.keys.length, 1);

    const refreshed = await joinBoundKeypair({
      baseUrl: BASE,
      fetch: doFetch,
      tokenName: "edge-bot",
      subjectKey,
      ttlSeconds: 3600,
      previousJoinState: first.bound_keypair.join_state,
      identity: {
        certDer: fromPem("CERTIFICATE", first.certificates.tls_cert),
        privateKey: subjectKey.privateKey,
      },
      keyStore,
    });
    assertEquals(refreshed.bot_instance_id, first.bot_instance_id);
    assertEquals(refreshed.generation, 2);
    const token = await api.get("token", "edge-bot");
    const status = (token as { status?: { bound_keypair?: { recovery_count?: number } } }).status;
    assertEquals(status?.bound_keypair?.recovery_count, 1, "a refresh must not count a recovery");
  });
});

Deno.test("auth service as a Worker: a bad or missing CLUSTER_NAME is a JSON error, not a crash", async () => {
  await using script = await bundle(
    new URL("../../runtime-adapters/workers/auth_worker.ts", import.meta.url),
  );
  // No CLUSTER_NAME binding at all was a TypeError and a 500 INTERNAL (review-ca S2).
  const cases: [Record<string, string>, string][] = [
    [{ CLUSTER_NAME: "not a valid name!" }, "invalid cluster name"],
    [{}, "no cluster name: set it with --cluster-name (default: the host name), or CLUSTER_NAME"],
  ];
  for (const [bindings, message] of cases) {
    await using worker = await startWorker(script.path, {
      durableObjects: { CLUSTER_STATE: "ClusterState" },
      bindings,
    });
    const res = await worker.fetch("/v1/ping");
    const body = await res.json();
    assertEquals([res.status, body.error.code], [400, "CONFIG_INVALID"], body.error.message);
    assert(body.error.message.includes(message), body.error.message);
  }
});
