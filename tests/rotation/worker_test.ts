/**
 * CA rotation on the Worker runtime, in real workerd (miniflare): an isolate
 * has no timer, so requests move an automatic rotation along; the JWKS lists
 * both keys meanwhile and only the new one after standby.
 *
 * @module
 */
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { ADMIN_BOOTSTRAP_PATH } from "../../runtime-adapters/workers/admin_bootstrap.ts";
import { assert, assertEquals } from "../_assert.ts";
import { bundle, startWorker } from "../workers/_harness.ts";
import { eventually } from "./_auth.ts";

Deno.test({
  name: "rotation on Workers: requests drive an automatic jwt rotation to standby",
  sanitizeResources: false,
  async fn() {
    await using script = await bundle(
      new URL("../../runtime-adapters/workers/auth_worker.ts", import.meta.url),
    );
    const token = "c".repeat(16) + crypto.randomUUID().replaceAll("-", "");
    await using worker = await startWorker(script.path, {
      durableObjects: { CLUSTER_STATE: "ClusterState" },
      bindings: { CLUSTER_NAME: "edge-rotation.example", KEYBOUND_ADMIN_BOOTSTRAP_TOKEN: token },
    });
    const res = await worker.fetch(ADMIN_BOOTSTRAP_PATH, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(res.status, 200);
    const id = await parseIdentityFile(await res.text());
    const api = new AdminApiClient({
      baseUrl: "http://worker.test",
      signer: { certDer: id.certDer, privateKey: id.privateKey },
      fetch: ((input: string | URL | Request, init?: RequestInit) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        return worker.fetch(url.pathname + url.search, init);
      }) as typeof fetch,
    });
    const started = await api.rotateCa("jwt", { mode: "auto", grace_period_s: 6 });
    assertEquals([started.phase, started.mode], ["init", "auto"]);
    const sizes = new Set<number>();
    await eventually(
      async () => {
        const jwks = await (await worker.fetch("/.well-known/jwks.json")).json();
        sizes.add(jwks.keys.length);
        const s = await api.status();
        return s.cas!.find((c) => c.type === "jwt")!.phase === "standby";
      },
      60_000,
      "the jwt CA to reach standby",
    );
    assert(sizes.has(2), "the JWKS never listed both keys");
    const jwks = await (await worker.fetch("/.well-known/jwks.json")).json();
    assertEquals(jwks.keys.length, 1);
    const audit = await api.audit({ type: "ca.rotation" });
    assertEquals(audit.items.map((e) => e.phase).reverse(), [
      "init",
      "update_clients",
      "update_servers",
      "standby",
    ]);
  },
});
