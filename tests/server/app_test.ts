import { assert, assertEquals } from "../_assert.ts";
import { parseAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { certificatesFromPem, parseCertificate } from "../../src/pki/mod.ts";
import { signRequest } from "../../src/protocol/signed_request.ts";
import { createApp } from "../../src/server/app.ts";
import { caPin } from "../../src/server/bootstrap.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { MAX_BODY_BYTES } from "../../src/protocol/body_limit.ts";
import { createLogger } from "../../src/util/log.ts";
import { adminSigner, botSigner, newCluster } from "./_cluster_fixture.ts";

async function getJson(app: ReturnType<typeof createApp>, path: string, init?: RequestInit) {
  const res = await app.request(path, init);
  return { status: res.status, type: res.headers.get("content-type"), json: await res.json() };
}

Deno.test("GET /v1/ping reports the cluster and the host CA pin", async () => {
  const { ctx } = await newCluster("ping.example");
  const r = await getJson(createApp(ctx), "/v1/ping");
  assertEquals(r.status, 200);
  assertEquals(r.json, {
    cluster_name: "ping.example",
    server_version: "0.0.0-test",
    protocol_version: 1,
    signature_algorithm_suite: "balanced-v1",
    join_methods: ["bound_keypair"],
    ca_pin: await caPin(ctx.cas.host),
  });
});

Deno.test("GET /v1/ca/{host|user} serves the X.509 and SSH halves; other types are 400", async () => {
  const { ctx } = await newCluster();
  const app = createApp(ctx);
  for (const type of ["host", "user"] as const) {
    const r = await getJson(app, `/v1/ca/${type}`);
    assertEquals(r.status, 200);
    const [der] = certificatesFromPem(r.json.tls_ca_certs[0]);
    assertEquals(der, ctx.cas[type].tls!.certDer);
    assert(parseCertificate(der).isCA);
    assertEquals(r.json.ssh_ca_keys.length, 1);
    assertEquals((await parseAuthorizedKey(r.json.ssh_ca_keys[0])).type, "ssh-ed25519");
  }
  const bad = await getJson(app, "/v1/ca/bound_keypair");
  assertEquals([bad.status, bad.json.error.code], [400, "BAD_REQUEST"]);
});

Deno.test("unknown routes are 404 NOT_FOUND in the JSON error shape", async () => {
  const { ctx } = await newCluster();
  const r = await getJson(createApp(ctx), "/v1/nothing/here");
  assertEquals(r.status, 404);
  assert(r.type?.startsWith("application/json"));
  assertEquals(r.json.error.code, "NOT_FOUND");
  const root = await getJson(createApp(ctx), "/");
  assertEquals(root.json.error.code, "NOT_FOUND");
});

Deno.test("GET /v1/status needs an @admin signed request", async () => {
  const { ctx } = await newCluster("status.example");
  const app = createApp(ctx);
  const anon = await getJson(app, "/v1/status");
  assertEquals([anon.status, anon.json.error.code], [401, "UNAUTHENTICATED"]);

  const botAuth = await signRequest(await botSigner(ctx), { method: "GET", path: "/v1/status" });
  const asBot = await getJson(app, "/v1/status", { headers: { authorization: botAuth } });
  assertEquals([asBot.status, asBot.json.error.code], [403, "ACCESS_DENIED"]);

  const auth = await signRequest(await adminSigner(ctx), { method: "GET", path: "/v1/status" });
  const r = await getJson(app, "/v1/status", { headers: { authorization: auth } });
  assertEquals(r.status, 200);
  const host = await caPin(ctx.cas.host);
  assertEquals(
    r.json.cas.map((c: { type: string; phase: string }) => [c.type, c.phase]),
    [["host", "standby"], ["user", "standby"], ["bound_keypair", "standby"], ["jwt", "standby"], [
      "spiffe",
      "standby",
    ]],
  );
  delete r.json.cas;
  assertEquals(r.json, {
    cluster_name: "status.example",
    server_version: "0.0.0-test",
    ca_pin: host,
    ca_pins: { host, user: await caPin(ctx.cas.user) },
  });
});

Deno.test("bodies over the limit are 413 PAYLOAD_TOO_LARGE, with or without Content-Length", async () => {
  const { ctx } = await newCluster();
  const app = createApp(ctx);
  const big = new Uint8Array(MAX_BODY_BYTES + 1).fill(0x61);
  const sized = await getJson(app, "/v1/status", { method: "POST", body: big });
  assertEquals([sized.status, sized.json.error.code], [413, "PAYLOAD_TOO_LARGE"]);

  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(MAX_BODY_BYTES / 4));
      c.close();
    },
  });
  const req = new Request("http://x/v1/join/bound-keypair/begin", {
    method: "POST",
    body: stream,
    // @ts-ignore: Deno's RequestInit needs duplex for stream bodies
    duplex: "half",
  });
  const streamed = await app.fetch(req, {});
  assertEquals(streamed.status, 413);
  assertEquals((await streamed.json()).error.code, "PAYLOAD_TOO_LARGE");
});

Deno.test("unexpected errors are 500 INTERNAL without details; they are logged server-side", async () => {
  const { ctx } = await newCluster();
  const lines: string[] = [];
  const logged: ServerContext = { ...ctx, log: createLogger({ write: (l) => lines.push(l) }) };
  const app = createApp(logged);
  app.get("/v1/boom", () => {
    throw new Error("db password is hunter2");
  });
  const r = await getJson(app, "/v1/boom");
  assertEquals(r.status, 500);
  assertEquals(r.json, { error: { code: "INTERNAL", message: "internal error" } });
  assert(lines.some((l) => l.includes("hunter2")), "the real error is in the server log");
});
