/**
 * Rolling upgrades (docs/protocol.md §1.7): a tctl run against
 * a newer auth service whose answers carry fields it does not know reads the
 * fields it knows and drops the rest, so an additive answer change does not
 * break older clients. The server is the real app; a wrapper in front of it
 * adds an unknown field to every object of the status, CA and resource
 * answers, as a newer server would. A resource read to be written back is
 * the exception: dropping a field would delete it, so tctl refuses instead
 * (`edit`, `bots update`), or prints it as sent (`get` as YAML or JSON), so
 * that `create -f` of that output refuses it rather than deleting it.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { MemoryKeyStore } from "../_key_store.ts";
import { FUTURE, newerServer } from "../protocol/_newer_server.ts";
import { type RunResult, startInProcessAuth, tctl } from "./_harness.ts";

Deno.test("tctl status and auth export read a newer server's answers with unknown fields", async () => {
  let newer: ReturnType<typeof newerServer> | undefined;
  const auth = await startInProcessAuth({
    around: (app) =>
      newer = newerServer(app, (path) => path === "/v1/status" || path.startsWith("/v1/cas/")),
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
    assertEquals(newer!.changed, 6);
  } finally {
    await auth.stop();
  }
});

function ok(r: RunResult): string {
  assertEquals(r.code, 0, r.stderr);
  return r.stdout;
}

Deno.test("tctl reads a newer server's resources with unknown fields, and refuses to write one back", async () => {
  let newer: ReturnType<typeof newerServer> | undefined;
  const auth = await startInProcessAuth({
    around: (app) =>
      newer = newerServer(
        app,
        (path) => path.startsWith("/v1/resources") || path.startsWith("/v1/tokens/"),
      ),
  });
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  // `get` prints the resources as sent (the field included), the others what they know.
  const json = async (...args: string[]) => {
    const out = ok(await tctl([...args, "--format", "json", ...conn]));
    assertEquals(out.includes(FUTURE), args[0] === "get", out);
    return JSON.parse(out);
  };
  try {
    // Writes whose answers carry the resources written (POST /v1/resources, PUT, token rotation).
    assertStringIncludes(ok(await tctl(["bots", "add", "web", ...conn])), "web");
    const keys = new MemoryKeyStore();
    const key = await keys.add("EdDSA");
    ok(await tctl(["bots", "add", "edge", "--initial-public-key", key, ...conn]));
    ok(await tctl(["lock", "--join-token", "web", "--ttl", "1h", "--message", "m", ...conn]));
    ok(await tctl(["bound-keypair", "rotate", "web", ...conn]));
    // A real join makes a bot instance.
    const joined = await joinBoundKeypair({
      baseUrl: auth.url,
      tokenName: "edge",
      subjectKey: await generateKeyPair("EdDSA"),
      ttlSeconds: 3600,
      keyStore: keys,
    });

    // Reads, each kind, listed and one by one: the known fields, nothing else.
    const [bot] = await json("get", "bot/web");
    assertEquals([bot.kind, bot.metadata.name, bot.spec.roles], ["bot", "web", []]);
    const [token] = await json("get", "token/web");
    assert(token.spec.bound_keypair.rotate_after, "rotate_after set by the rotation");
    assertEquals((await json("bots", "ls")).map((b: typeof bot) => b.metadata.name), [
      "edge",
      "web",
    ]);
    assertEquals((await json("tokens", "ls")).length, 2);
    assertEquals((await json("locks", "ls")).length, 1);
    const instances = await json("bots", "instances", "ls");
    assertEquals(instances.length, 1);
    const ref = `edge/${joined.bot_instance_id}`;
    assertStringIncludes(ok(await tctl(["bots", "instances", "show", ref, ...conn])), "edge");
    const yaml = ok(await tctl(["get", "token", "--format", "yaml", ...conn]));
    assert(yaml.includes("kind: token") && yaml.includes(FUTURE), yaml);
    const table = ok(await tctl(["get", "token", "--format", "text", ...conn]));
    assert(table.includes("web") && !table.includes(FUTURE), table);

    // Read-modify-write: the write would drop the field from the server's copy, so it is refused.
    const refused = (r: RunResult, kind: string) => {
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "[NOT_IMPLEMENTED]");
      assertStringIncludes(r.stderr, `the server's ${kind} has fields this client does not know`);
      assertStringIncludes(r.stderr, FUTURE);
      assertStringIncludes(r.stderr, "upgrade this client to change it");
    };
    const before = newer!.changed;
    refused(await tctl(["bots", "update", "web", "--max-session-ttl", "2h", ...conn]), "bot");
    const editor = `${await Deno.makeTempDir()}/raise.sh`;
    await Deno.writeTextFile(editor, `#!/bin/sh\nsed -i 's/limit: 1$/limit: 5/' "$1"\n`, {
      mode: 0o755,
    });
    refused(
      await tctl(["edit", "token/web", ...conn], { env: { EDITOR: editor, VISUAL: "" } }),
      "token",
    );
    // The round trip docs/deployment.md gives (get, edit, create -f): the
    // printout keeps the field, so create -f refuses it instead of deleting it.
    const dir = await Deno.makeTempDir();
    const file = `${dir}/token.yaml`;
    const printed = ok(await tctl(["get", "token/web", ...conn]));
    assertStringIncludes(printed, `${FUTURE}:`);
    await Deno.writeTextFile(file, printed.replace(/limit: 1$/m, "limit: 5"));
    const written = await tctl(["create", "-f", file, ...conn]);
    assertEquals(written.code, 1, written.stdout);
    assertStringIncludes(
      written.stderr,
      `${file}: document 1: metadata.${FUTURE}: unknown field "${FUTURE}"`,
    );
    assertEquals(written.stdout, "");
    await Deno.remove(dir, { recursive: true });
    assertEquals(newer!.changed, before + 3, "each read once, nothing written");
    assertEquals((await json("get", "bot/web"))[0].spec.max_session_ttl, bot.spec.max_session_ttl);
    assertEquals(
      (await json("get", "token/web"))[0].spec.bound_keypair.recovery,
      token.spec.bound_keypair.recovery,
    );
    await Deno.remove(editor.slice(0, editor.lastIndexOf("/")), { recursive: true });
  } finally {
    await auth.stop();
  }
});
