/**
 * The admin API routes through the real app with signed requests.
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import { bootstrapCluster, createApp, issueAdminIdentityFile } from "../../src/server/mod.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { signRequest } from "../../src/protocol/signed_request.ts";
import { silentLogger } from "../../src/util/log.ts";

async function setup() {
  const ctx = await bootstrapCluster(new MemoryBackend(), {
    clusterName: "routes.example",
    log: silentLogger,
    version: "0.1.0",
  });
  const identity = await parseIdentityFile(await issueAdminIdentityFile(ctx));
  const app = createApp(ctx);
  const call = async (method: string, path: string, body?: unknown, signed = true) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (signed) headers.authorization = await signRequest(identity, { method, path, body: text });
    const res = await app.fetch(
      new Request(`http://localhost${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : text,
      }),
      { remoteAddr: "127.0.0.1:5555" },
    );
    return { status: res.status, json: await res.json() };
  };
  return { ctx, call };
}

const bot = (name: string) => ({
  kind: "bot",
  version: "v1",
  metadata: { name },
  spec: { roles: [] },
});

Deno.test("admin routes require a signed admin request", async () => {
  const { call } = await setup();
  const r = await call("GET", "/v1/resources/bot", undefined, false);
  assertEquals([r.status, r.json.error.code], [401, "UNAUTHENTICATED"]);
  // The guard is per route: public routes mounted next to the admin router stay public.
  const ping = await call("GET", "/v1/ping", undefined, false);
  assertEquals(ping.status, 200);
});

Deno.test("PUT validates body, kind and name against the URL; create vs upsert", async () => {
  const { call } = await setup();
  const created = await call("PUT", "/v1/resources/bot/a", { resource: bot("a"), mode: "create" });
  assertEquals([created.status, created.json.created], [200, true]);
  assertEquals(created.json.item.status, { user_name: "bot-a", role_name: "bot-a" });
  const again = await call("PUT", "/v1/resources/bot/a", { resource: bot("a") });
  assertEquals([again.status, again.json.error.code], [409, "ALREADY_EXISTS"]);
  const upsert = await call("PUT", "/v1/resources/bot/a", { resource: bot("a"), mode: "upsert" });
  assertEquals([upsert.status, upsert.json.created], [200, false]);

  const mismatch = await call("PUT", "/v1/resources/bot/b", { resource: bot("a") });
  assertEquals(mismatch.json.error.code, "BAD_PARAMETER");
  assertStringIncludes(mismatch.json.error.message, "metadata.name");
  const wrongKind = await call("PUT", "/v1/resources/token/a", { resource: bot("a") });
  assertStringIncludes(wrongKind.json.error.message, "kind:");
  const badField = await call("PUT", "/v1/resources/bot/a", {
    resource: { ...bot("a"), spec: { roles: "x" } },
  });
  assertEquals(badField.json.error, {
    code: "BAD_PARAMETER",
    message: "spec.roles: expected array, received string",
    details: { path: "spec.roles" },
  });
  const instance = await call("PUT", "/v1/resources/bot_instance/a", { resource: bot("a") });
  assertStringIncludes(instance.json.error.message, "read-only");
  const unknown = await call("GET", "/v1/resources/user");
  assertEquals([unknown.status, unknown.json.error.code], [400, "BAD_REQUEST"]);
});

Deno.test("names with @ : + round-trip through percent-encoded paths", async () => {
  const { call } = await setup();
  const name = "ci+deploy@team:1";
  const path = `/v1/resources/bot/${encodeURIComponent(name)}`;
  assertEquals((await call("PUT", path, { resource: bot(name) })).status, 200);
  assertEquals((await call("GET", path)).json.item.metadata.name, name);
  assertEquals((await call("DELETE", path)).status, 200);
});

Deno.test("audit lists newest first, by type, with a bounded limit; events carry the peer", async () => {
  const { call } = await setup();
  await call("PUT", "/v1/resources/bot/a", { resource: bot("a") });
  await call("PUT", "/v1/resources/bot/b", { resource: bot("b") });
  await call("DELETE", "/v1/resources/bot/a");
  const all = await call("GET", "/v1/audit?type=resource.created&limit=1");
  assertEquals(all.json.items.length, 1);
  assertEquals(all.json.items[0].name, "b");
  assertEquals(all.json.items[0].connection, { remote_addr: "127.0.0.1:5555" });
  const deleted = await call("GET", "/v1/audit?type=resource.deleted");
  assertEquals(deleted.json.items.map((e: { name: string }) => e.name), ["a"]);
  const bad = await call("GET", "/v1/audit?limit=0");
  assertEquals(bad.json.error.code, "BAD_PARAMETER");
});
