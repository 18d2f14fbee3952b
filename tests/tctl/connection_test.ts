/**
 * How tctl finds the auth service and trusts it: flags, --data-dir, the
 * environment, host-CA verification, --insecure, and http:// on loopback only.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { BadParameterError } from "../../src/errors.ts";
import { authServerUrl, resolveConnection } from "../../src/cli/tctl/mod.ts";
import { startAuth, tctl } from "./_harness.ts";

function env(vars: Record<string, string>, files: Record<string, string> = {}) {
  return {
    env: (name: string) => vars[name],
    readTextFile: (path: string) =>
      path in files ? Promise.resolve(files[path]) : Promise.reject(new Error("not found")),
  };
}

Deno.test("authServerUrl: https by default, port 3025, http only on loopback", () => {
  assertEquals(authServerUrl("auth.example.com"), "https://auth.example.com:3025");
  assertEquals(authServerUrl("10.0.0.1:443"), "https://10.0.0.1:443");
  assertEquals(authServerUrl("https://auth.example.com:3025/"), "https://auth.example.com:3025");
  assertEquals(authServerUrl("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  assertEquals(authServerUrl("http://[::1]:8080"), "http://[::1]:8080");
  assertEquals(authServerUrl("[::1]:8080"), "https://[::1]:8080");
  for (const bad of ["http://10.0.0.1:3025", "http://auth.example.com", "ftp://x:1", "a:b:c"]) {
    let threw = false;
    try {
      authServerUrl(bad);
    } catch (e) {
      threw = e instanceof BadParameterError;
    }
    assert(threw, `${bad} must be refused`);
  }
});

Deno.test("resolveConnection: flags, then --data-dir, then environment", async () => {
  const files = { "/d/auth-server": "https://127.0.0.1:4000\n" };
  const vars = { TELEPORT_AUTH_SERVER: "env.example:1", TELEPORT_IDENTITY_FILE: "/env/id" };
  assertEquals(await resolveConnection({ dataDir: "/d/" }, env(vars, files)), {
    baseUrl: "https://127.0.0.1:4000",
    identityPath: "/d/admin-identity",
    insecure: false,
    caPems: [],
  });
  assertEquals(
    await resolveConnection(
      { dataDir: "/d", authServer: "flag.example:2", identity: "/flag/id", insecure: true },
      env(vars, files),
    ),
    { baseUrl: "https://flag.example:2", identityPath: "/flag/id", insecure: true, caPems: [] },
  );
  assertEquals(await resolveConnection({}, env(vars)), {
    baseUrl: "https://env.example:1",
    identityPath: "/env/id",
    insecure: false,
    caPems: [],
  });
  await assertRejects(() => resolveConnection({}, env({})), BadParameterError, "no auth server");
  await assertRejects(
    () => resolveConnection({ authServer: "a:1" }, env({})),
    BadParameterError,
    "no identity",
  );
  await assertRejects(
    () => resolveConnection({ dataDir: "/missing" }, env({})),
    BadParameterError,
    "/missing/auth-server",
  );
});

Deno.test("tctl trusts only the host CA of its identity; --data-dir; --insecure", async () => {
  const [a, b] = await Promise.all([startAuth("a.example"), startAuth("b.example")]);
  try {
    // A data directory without DIR/auth-server: a clear error.
    const noFile = await tctl(["--data-dir", a.workDir, "status"]);
    assertEquals(noFile.code, 1);
    assertStringIncludes(
      noFile.stderr,
      `tctl: error [BAD_PARAMETER]: cannot read ${a.workDir}/auth-server`,
    );
    // The auth service writes its URL there at start; tctl --data-dir needs nothing else.
    assertEquals(await Deno.readTextFile(`${a.dataDir}/auth-server`), `${a.url}\n`);
    const viaDataDir = await tctl(["status", "--data-dir", a.dataDir]);
    assertEquals(viaDataDir.code, 0, viaDataDir.stderr);
    assertStringIncludes(viaDataDir.stdout, "Cluster  a.example\n");

    // B's identity carries B's host CA: A's server certificate does not verify.
    const wrongCa = await tctl(["status", "--auth-server", a.address, "-i", b.identity]);
    assertEquals(wrongCa.code, 1);
    assertStringIncludes(
      wrongCa.stderr,
      `tctl: error [TLS_UNTRUSTED]: cannot reach the auth service at ${a.url}`,
    );
    assertStringIncludes(
      wrongCa.stderr,
      "does not verify against the host CA in the identity file",
    );
    assertEquals(wrongCa.stderr.trimEnd().split("\n").length, 1);
    // --insecure skips TLS verification, but A still refuses B's admin certificate.
    const insecure = await tctl([
      "status",
      "--insecure",
      "--auth-server",
      a.address,
      "-i",
      b.identity,
    ]);
    assertEquals(insecure.code, 1);
    assertStringIncludes(insecure.stderr, "tctl: error [UNAUTHENTICATED]: ");
    const insecureOk = await tctl([
      "status",
      "--insecure",
      "--auth-server",
      a.address,
      "-i",
      a.identity,
    ]);
    assertEquals(insecureOk.code, 0, insecureOk.stderr);

    // Environment variables, and http:// refused for a non-loopback address.
    const viaEnv = await tctl(["status"], {
      env: { TELEPORT_AUTH_SERVER: b.url, TELEPORT_IDENTITY_FILE: b.identity },
    });
    assertStringIncludes(viaEnv.stdout, "Cluster  b.example\n");
    const plain = await tctl([
      "status",
      "--auth-server",
      "http://192.0.2.1:3025",
      "-i",
      a.identity,
    ]);
    assertEquals(plain.code, 1);
    assertStringIncludes(plain.stderr, "plain http:// is only allowed for loopback addresses");
    const missingId = await tctl(["status", "--auth-server", a.address, "-i", `${a.workDir}/none`]);
    assertStringIncludes(
      missingId.stderr,
      `tctl: error [BAD_PARAMETER]: cannot read identity file ${a.workDir}/none`,
    );
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
