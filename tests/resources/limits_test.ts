/**
 * Issue #8 item 6: depth and size limits on every request body and
 * resource. A 10,000-deep role is a 400 naming the field (no RangeError, no
 * 500), nothing is stored, and `tctl get` keeps working; oversized strings,
 * arrays and objects in an unauthenticated `begin` are refused the same way.
 *
 * @module
 */
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { JOIN_BEGIN_PATH } from "../../src/protocol/messages.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { checkJsonLimits, JSON_LIMITS } from "../../src/resources/limits.ts";
import type { Role } from "../../src/resources/schemas.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { startInProcessAuth, tctl } from "../tctl/_harness.ts";

function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { logins: ["root"] };
  for (let i = 0; i < depth; i++) v = { x: v };
  return v;
}

function deepRole(depth: number): Role {
  return {
    kind: "role",
    version: "v7",
    metadata: { name: "deep" },
    spec: { allow: nested(depth) },
  } as unknown as Role;
}

Deno.test("checkJsonLimits measures without recursing and names the first offender", () => {
  const deep = checkJsonLimits({ spec: nested(100_000) });
  assert(deep !== null);
  assertEquals(deep.path.length, JSON_LIMITS.maxDepth);
  assertEquals(deep.path.slice(0, 2), ["spec", "x"]);
  assertEquals(checkJsonLimits({ a: [1, 2, "x".repeat(20_000)] })?.path, ["a", 2]);
  assertEquals(checkJsonLimits({ a: Array(1001).fill(0) })?.path, ["a"]);
  const wide = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
  assertEquals(checkJsonLimits({ w: wide })?.message, "object with more than 256 keys");
  assertEquals(checkJsonLimits({ spec: nested(20), s: "x".repeat(16_384) }), null);
  for (const leaf of [null, 1, true, "s"]) assertEquals(checkJsonLimits(leaf), null);
  assertEquals(checkJsonLimits("x".repeat(20_000))?.path, []);
});

Deno.test("checkJsonLimits reports the first offender in document order, with its whole path", () => {
  const doc = {
    a: [{ n: 1, ok: "x", b: [null, true, { ["k".repeat(20_000)]: 1 }] }],
    c: { d: [0, "y".repeat(20_000)] },
    e: Array(1001).fill(0),
  };
  assertEquals(checkJsonLimits(doc), {
    path: ["a", 0, "b", 2],
    message: "key longer than 16384 characters",
  });
  delete (doc.a[0].b[2] as Record<string, unknown>)["k".repeat(20_000)];
  assertEquals(checkJsonLimits(doc), {
    path: ["c", "d", 1],
    message: "string longer than 16384 characters",
  });
  doc.c.d.pop();
  assertEquals(checkJsonLimits(doc), { path: ["e"], message: "array longer than 1000 elements" });
});

Deno.test("a 10,000-deep role is a 400 naming the field; nothing stored; tctl get works", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  try {
    const id = await parseIdentityFile(await Deno.readTextFile(auth.identity));
    const admin = new AdminApiClient({
      baseUrl: auth.url,
      signer: { certDer: id.certDer, privateKey: id.privateKey },
    });
    for (const depth of [40, 10_000]) {
      const err = await admin.put(deepRole(depth), "create").then(() => null, (e) => e);
      assert(isKeyboundError(err, "BAD_PARAMETER"), `depth ${depth}: ${err}`);
      assertStringIncludes(err.message, "resource.spec.allow.x.x");
      assertStringIncludes(err.message, "nested deeper than 32 levels");
    }
    // A role of ordinary depth still goes through.
    await admin.put(deepRole(3), "create");

    const roles = await tctl(["get", "roles", "--format", "json", ...conn]);
    assertEquals(roles.code, 0, roles.stderr);
    assertEquals(JSON.parse(roles.stdout).map((r: Role) => r.metadata.name), ["deep"]);

    // The same limits hold for unauthenticated join bodies.
    const keys = { public_tls_key: "x", public_ssh_key: "y" };
    for (
      const [body, path] of [
        [{ token_name: "t".repeat(20_000), ...keys }, "token_name"],
        [{ token_name: "t", ...keys, extra: nested(40) }, "extra.x.x"],
        [{ token_name: "t", ...keys, extra: Array(5000).fill(1) }, "extra"],
      ] as const
    ) {
      const res = await fetch(auth.url + JOIN_BEGIN_PATH, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const json = await res.json();
      assertEquals([res.status, json.error.code], [400, "BAD_PARAMETER"]);
      assert(json.error.details.path.startsWith(path), json.error.details.path);
    }

    // tctl create refuses the file with one line (the YAML reader gives up first).
    await Deno.writeTextFile(`${auth.identity}.deep.json`, JSON.stringify(deepRole(10_000)));
    const create = await tctl(["create", `${auth.identity}.deep.json`, ...conn]);
    assert(create.code !== 0);
    assertEquals(create.stderr.trim().split("\n").length, 1, create.stderr);
    assertStringIncludes(create.stderr, "deep.json");
  } finally {
    await auth.stop();
  }
});
