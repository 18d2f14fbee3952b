/**
 * Rolling upgrades (docs/protocol.md §1.7): a tctl run against
 * a newer auth service whose answers carry fields it does not know reads the
 * fields it knows and drops the rest, so an additive answer change does not
 * break older clients. The server is the real app; a wrapper in front of it
 * adds an unknown field to every object of the CA status and export answers,
 * as a newer server would.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import type { FetchApp } from "../../runtime-adapters/deno/serve.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

const FUTURE = "future_field_of_a_newer_server";

/** `value` with `FUTURE` added to every object in it, at every depth. */
function withFutureFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withFutureFields);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = { [FUTURE]: { added: "later" } };
  for (const [k, v] of Object.entries(value)) out[k] = withFutureFields(v);
  return out;
}

/** Serves `app`, adding future fields to the JSON answers of the status and CA admin calls. */
function newerServer(app: FetchApp): FetchApp {
  return {
    async fetch(request, env) {
      const res = await app.fetch(request, env);
      const path = new URL(request.url).pathname;
      if (!res.ok || !(path === "/v1/status" || path.startsWith("/v1/cas/"))) return res;
      const body = withFutureFields(await res.json());
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    },
  };
}

Deno.test("tctl status and auth export read a newer server's answers with unknown fields", async () => {
  let seen = 0;
  const auth = await startInProcessAuth({
    around: (app) => {
      const newer = newerServer(app);
      return { fetch: (request, env) => (seen++, newer.fetch(request, env)) };
    },
  });
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  try {
    const status = await tctl(["status", ...conn]);
    assertEquals(status.code, 0, status.stderr);
    assertStringIncludes(status.stdout, "Cluster  inproc.example");
    assertStringIncludes(status.stdout, "CA pin   sha256:");
    for (const type of ["host", "user", "bound_keypair", "jwt", "spiffe"]) {
      assert(status.stdout.split("\n").some((l) => l.startsWith(type + " ")), type);
    }
    // The unknown fields are dropped, not passed through.
    const json = await tctl(["status", "--format", "json", ...conn]);
    assertEquals(json.code, 0, json.stderr);
    assertEquals(JSON.parse(json.stdout).cas.length, 5);
    assert(!json.stdout.includes(FUTURE), json.stdout);

    const exported = async (...args: string[]) => {
      const r = await tctl(["auth", "export", ...args, ...conn]);
      assertEquals(r.code, 0, r.stderr);
      return r.stdout;
    };
    assertStringIncludes(await exported("--type=user"), "ssh-ed25519 ");
    const ed25519 = await exported("--type=user", "--format", "ed25519-pem");
    assertStringIncludes(ed25519, "-----BEGIN CERTIFICATE-----");
    const hosts = await exported("--type=host", "--format", "known_hosts");
    assertStringIncludes(hosts, "@cert-authority");
    const jwks = await exported("--type=jwt", "--format", "jwks");
    assert(JSON.parse(jwks).keys.length > 0, jwks);
    assert(!jwks.includes(FUTURE), jwks);
    assert(seen >= 5);
  } finally {
    await auth.stop();
  }
});
