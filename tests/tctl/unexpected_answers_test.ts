/**
 * An answer tctl cannot use is told apart by the error's `details`
 * (src/protocol/http_client.ts), not its message, and worded for what it is:
 * JSON that does not match the wire schema (a server of another version:
 * the field that failed is named) or no JSON at all (something else answers
 * at that address). Real tctl against the real app, behind a wrapper that
 * answers as an older server, or as a proxy's page, would.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import type { FetchApp } from "../../runtime-adapters/deno/serve.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

/** `app`, with the successful answers to `path` passed through `change`. */
function changing(app: FetchApp, path: string, change: (body: string) => string): FetchApp {
  return {
    async fetch(request, env) {
      const res = await app.fetch(request, env);
      if (!res.ok || !new URL(request.url).pathname.startsWith(path)) return res;
      return new Response(change(await res.text()), { status: res.status });
    },
  };
}

/** An older server's status: `server_version` missing. */
const olderStatus = (body: string) => {
  const { server_version: _, ...rest } = JSON.parse(body);
  return JSON.stringify(rest);
};

/** A role whose `spec` is a list, as no version of the schema has it. */
const otherRole = (body: string) => {
  const answer = JSON.parse(body);
  for (const item of answer.items ?? [answer]) if (item.kind === "role") item.spec = [];
  return JSON.stringify(answer);
};

Deno.test("tctl names the field of an answer from another version and says what it is", async () => {
  const cases: [string, (body: string) => string, string[], RegExp][] = [
    [
      "/v1/status",
      olderStatus,
      ["status"],
      /^tctl: error \[CONNECTION_FAILED\]: unexpected answer to GET \/v1\/status from the server: server_version: .* \(the auth service answered, but its field server_version is not what this tctl reads: tctl and the auth service are of different versions; use a tctl of the service's version\)$/,
    ],
    [
      "/v1/resources/role",
      otherRole,
      ["get", "role", "--format", "yaml"],
      /^tctl: error \[CONNECTION_FAILED\]: unexpected role from the server: spec: .* \(the auth service answered, but its field spec is not what this tctl reads: tctl and the auth service are of different versions; /,
    ],
    [
      "/v1/status",
      () => "<html><body>Sign in to the proxy</body></html>",
      ["status"],
      /^tctl: error \[CONNECTION_FAILED\]: unexpected answer to GET \/v1\/status from the server: the answer is not JSON \(something answered, but not with JSON: check that the address names the auth service, not a proxy or another service\)$/,
    ],
  ];
  for (const [path, change, args, expected] of cases) {
    const auth = await startInProcessAuth({ around: (app) => changing(app, path, change) });
    const conn = ["--auth-server", auth.url, "-i", auth.identity];
    try {
      const role = { kind: "role", version: "v7", metadata: { name: "r" }, spec: {} };
      const seeded = await tctl(["create", "-", ...conn], { stdin: JSON.stringify(role) });
      assertEquals(seeded.code, 0, seeded.stderr);
      const r = await tctl([...args, ...conn]);
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr.trimEnd(), expected);
      assert(!r.stderr.includes("reachable"), r.stderr);
    } finally {
      await auth.stop();
    }
  }
});
