/**
 * Console enrollment and browser keys in process (docs/protocol.md §11): a
 * code works once and only before it expires, a wrong secret burns it, a
 * browser's key signs admin calls but cannot mint codes, and revocation,
 * locks and expiry refuse it at its next call. Console files carry the CSP.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { type ErrorCode, isKeyboundError } from "../../src/errors.ts";
import { callApi } from "../../src/protocol/http_client.ts";
import { EnrollResponse, WEB_ENROLL_PATH } from "../../src/protocol/web.ts";
import { createApp } from "../../src/server/app.ts";
import { acceptsGzip, CONSOLE_CSP } from "../../src/server/web/assets.ts";
import { fromBase64, toBase64 } from "../../src/util/encoding.ts";
import { adminSigner, newCluster, type TestCluster } from "./_cluster_fixture.ts";

async function setup() {
  const cluster = await newCluster();
  const app = createApp(cluster.ctx, {
    consoleAssets: new Map([
      ["index.html", { body: new TextEncoder().encode("<!doctype html>"), type: "text/html" }],
    ]),
  });
  const fetchApp = ((input: string | URL | Request, init?: RequestInit) =>
    Promise.resolve(
      app.fetch(new Request(input, init), { remoteAddr: "127.0.0.1:5555" }),
    )) as typeof fetch;
  const target = { baseUrl: "http://auth.test", fetch: fetchApp };
  const admin = new AdminApiClient({ ...target, signer: await adminSigner(cluster.ctx) });
  return { cluster, fetchApp, target, admin };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/** Enrolls a fresh non-extractable key with `code`; returns its API client. */
async function enroll(s: Setup, code: string) {
  const key = await generateKeyPair("ES256");
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", key.publicKey));
  const r = await callApi(s.target, {
    method: "POST",
    path: WEB_ENROLL_PATH,
    body: { code, public_key: toBase64(spki) },
    response: EnrollResponse,
  });
  const api = new AdminApiClient({
    ...s.target,
    signer: { certDer: fromBase64(r.cert), privateKey: key.privateKey },
  });
  return { api, enrolled: r };
}

async function refusedWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await assertRejects(() => p);
  assert(isKeyboundError(err, code), `expected ${code}, got ${err}`);
}

function later(c: TestCluster, ms: number): void {
  c.setNow(new Date(c.ctx.now().getTime() + ms));
}

Deno.test("web enroll: a code signs one browser in, once; the browser cannot mint codes", async () => {
  const s = await setup();
  const minted = await s.admin.createEnrollment({ ttl_seconds: 120, label: "laptop" });
  const { api, enrolled } = await enroll(s, minted.code);
  assertEquals(enrolled.browser_id, minted.browser_id);
  const me = await api.whoami();
  assertEquals(me.username, `web-${minted.browser_id}`);
  assertEquals(me.browser_id, minted.browser_id);
  // The browser key signs ordinary admin calls.
  assertEquals(await api.list("bot"), []);
  await refusedWith(api.createEnrollment({}), "ACCESS_DENIED");
  await refusedWith(enroll(s, minted.code), "ENROLLMENT_CODE_INVALID");
  const [b] = await s.admin.browsers();
  assertEquals([b.id, b.label, b.enrolled_by, b.remote_addr], [
    minted.browser_id,
    "laptop",
    "admin",
    "127.0.0.1:5555",
  ]);
  const types = (await s.admin.audit()).items.map((e) => e.type);
  assert(types.includes("web.enrollment_created") && types.includes("web.enrolled"), `${types}`);
});

Deno.test("web enroll: a wrong secret burns the code; an expired code is refused", async () => {
  const s = await setup();
  const minted = await s.admin.createEnrollment({});
  const [id, secret] = minted.code.split(".");
  const wrong = `${id}.${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
  await refusedWith(enroll(s, wrong), "ENROLLMENT_CODE_INVALID");
  await refusedWith(enroll(s, minted.code), "ENROLLMENT_CODE_INVALID");
  const failed = (await s.admin.audit({ type: "web.enrolled" })).items;
  assertEquals(failed.map((e) => e.status.success), [false]);

  await refusedWith(s.admin.createEnrollment({ ttl_seconds: 7200 }), "BAD_PARAMETER");
  const short = await s.admin.createEnrollment({ ttl_seconds: 60 });
  later(s.cluster, 61_000);
  await refusedWith(enroll(s, short.code), "ENROLLMENT_CODE_INVALID");
});

Deno.test("web rm, a lock on web-<id> and the session's end refuse the browser's next call", async () => {
  const s = await setup();
  const a = await enroll(s, (await s.admin.createEnrollment({})).code);
  const b = await enroll(s, (await s.admin.createEnrollment({ session_ttl_seconds: 600 })).code);
  await s.admin.revokeBrowser(a.enrolled.browser_id);
  await refusedWith(a.api.list("bot"), "BROWSER_REVOKED");
  await refusedWith(s.admin.revokeBrowser(a.enrolled.browser_id), "NOT_FOUND");

  await b.api.list("bot");
  await s.admin.put({
    kind: "lock",
    version: "v2",
    metadata: { name: "stop-b" },
    spec: { target: { user: b.enrolled.username }, message: "lost laptop" },
  }, "create");
  const err = await assertRejects(() => b.api.list("bot"));
  assert(isKeyboundError(err, "LOCKED"));
  assertStringIncludes(err.message, "lost laptop");
  await s.admin.delete("lock", "stop-b");
  await b.api.list("bot");
  later(s.cluster, 601_000);
  const expired = await assertRejects(() => b.api.list("bot"));
  assert(isKeyboundError(expired, "UNAUTHENTICATED"));
  assertStringIncludes(expired.message, "certificate is expired");
});

Deno.test("console files carry a strict CSP; other names are not served", async () => {
  const s = await setup();
  const res = await s.fetchApp("http://auth.test/web/");
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-security-policy"), CONSOLE_CSP);
  assertEquals(res.headers.get("x-content-type-options"), "nosniff");
  await res.body?.cancel();
  for (const path of ["/web/client.ts", "/web/missing.js", "/web/%2e%2e/deno.json"]) {
    const r = await s.fetchApp(`http://auth.test${path}`);
    assertEquals(r.status, 404, path);
    await r.body?.cancel();
  }
  // gzip when accepted; a reload with the ETag revalidates without the body.
  const gz = await s.fetchApp("http://auth.test/web/", {
    headers: { "accept-encoding": "br;q=1, gzip;q=0.5" },
  });
  assertEquals(gz.headers.get("content-encoding"), "gzip");
  const text = await new Response(gz.body!.pipeThrough(new DecompressionStream("gzip"))).text();
  assertEquals(text, "<!doctype html>");
  const etag = gz.headers.get("etag")!;
  const again = await s.fetchApp("http://auth.test/web/", { headers: { "if-none-match": etag } });
  assertEquals([again.status, again.headers.get("content-security-policy")], [304, CONSOLE_CSP]);
  const refused = await s.fetchApp("http://auth.test/web/", {
    headers: { "accept-encoding": "gzip;q=0, identity" },
  });
  assertEquals(refused.headers.get("content-encoding"), null);
  assertEquals(await refused.text(), "<!doctype html>");
  for (
    const [header, gzip] of [
      ["gzip, deflate, br, zstd", true],
      ["*;q=0.5, gzip;q=0", false],
      ["br, *", true],
      ["identity", false],
    ] as const
  ) assertEquals(acceptsGzip(header), gzip, header);
  const redirect = await s.fetchApp("http://auth.test/web");
  assertEquals([redirect.status, redirect.headers.get("location")], [308, "/web/"]);
});
