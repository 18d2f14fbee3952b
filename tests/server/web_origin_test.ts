/**
 * The web-origin policy (`--web-origin`): parsing, preflight answers and
 * refusals, in process. tests/browser/cors_test.ts runs the same policy
 * against real pages in Chromium.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { createApp } from "../../src/server/app.ts";
import { parseWebOrigin } from "../../src/server/web_origin.ts";
import { newCluster } from "./_cluster_fixture.ts";

const LISTED = "http://127.0.0.1:8080";
const OTHER = "http://127.0.0.1:8081";

Deno.test("parseWebOrigin: accepts SCHEME://HOST[:PORT] and refuses anything else by name", () => {
  assertEquals(
    parseWebOrigin("https://Kiosk.Example.com:8443", "--web-origin"),
    "https://kiosk.example.com:8443",
  );
  assertEquals(parseWebOrigin("http://127.0.0.1:5173/", "--web-origin"), "http://127.0.0.1:5173");
  assertEquals(parseWebOrigin("https://[::1]:443", "--web-origin"), "https://[::1]");
  for (
    const bad of [
      "*",
      "null",
      "127.0.0.1:8080",
      "ftp://example.com",
      "https://example.com/path",
      "https://example.com?q",
      "https://example.com#f",
      "https://user@example.com",
      "https://*.example.com",
    ]
  ) {
    const err = assertThrows(() => parseWebOrigin(bad, "--web-origin"));
    assertEquals(isKeyboundError(err, "BAD_PARAMETER"), true, bad);
    assertEquals(
      err.message.startsWith(`--web-origin ${JSON.stringify(bad)} is not a web origin`),
      true,
      err.message,
    );
  }
});

async function appWith(origins: string[]) {
  const { ctx } = await newCluster("origins.example");
  return createApp(ctx, { webOrigins: origins });
}

Deno.test("a listed origin's preflight is answered: GET/POST, two headers, no credentials", async () => {
  const app = await appWith([LISTED]);
  const res = await app.request("/v1/join/bound-keypair/begin", {
    method: "OPTIONS",
    headers: {
      origin: LISTED,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type",
    },
  });
  assertEquals(res.status, 204);
  assertEquals(res.headers.get("access-control-allow-origin"), LISTED);
  assertEquals(res.headers.get("access-control-allow-methods"), "GET,POST");
  assertEquals(res.headers.get("access-control-allow-headers"), "authorization,content-type");
  assertEquals(res.headers.get("access-control-allow-credentials"), null);
  assertEquals(res.headers.get("access-control-max-age"), "600");
});

Deno.test("a listed origin's call gets its origin back and runs", async () => {
  const app = await appWith([LISTED]);
  const res = await app.request("/v1/ping", { headers: { origin: LISTED } });
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("access-control-allow-origin"), LISTED);
  assertEquals(res.headers.get("vary"), "Origin");
  assertEquals((await res.json()).cluster_name, "origins.example");
});

Deno.test("another origin is refused with ORIGIN_NOT_ALLOWED, preflight and call alike", async () => {
  const app = await appWith([LISTED]);
  for (const method of ["OPTIONS", "GET"]) {
    const res = await app.request("/v1/ping", {
      method,
      headers: { origin: OTHER, "access-control-request-method": "GET" },
    });
    assertEquals(res.status, 403, method);
    assertEquals(res.headers.get("access-control-allow-origin"), null, method);
    assertEquals((await res.json()).error.code, "ORIGIN_NOT_ALLOWED", method);
  }
  // No list at all: every cross-origin call is refused.
  const none = await appWith([]);
  const res = await none.request("/v1/ping", { headers: { origin: LISTED } });
  assertEquals(res.status, 403);
  await res.body?.cancel();
});

Deno.test("calls without Origin and same-origin calls pass untouched", async () => {
  const app = await appWith([LISTED]);
  for (
    const headers of [
      {} as Record<string, string>,
      // Behind a proxy the URL may differ; the browser's own Sec-Fetch-Site decides.
      { origin: "https://auth.example.com", "sec-fetch-site": "same-origin" },
      { origin: "http://localhost" }, // app.request's URL origin
    ]
  ) {
    const res = await app.request("/v1/ping", { headers });
    assertEquals(res.status, 200, JSON.stringify(headers));
    assertEquals(res.headers.get("access-control-allow-origin"), null);
    await res.body?.cancel();
  }
  // OPTIONS without an Origin is no preflight: no route answers it.
  const res = await app.request("/v1/ping", { method: "OPTIONS" });
  assertEquals(res.status, 404);
  await res.body?.cancel();
});
