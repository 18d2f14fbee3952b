/**
 * Issue #8 item 7: `tctl bots add` creates the bot and its token together or
 * not at all. A bad `--initial-public-key` used to leave the bot without its
 * token; now the server validates both and commits them in one
 * compare-and-swap (`POST /v1/resources`).
 *
 * @module
 */
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import type { Bot, Token } from "../../src/resources/schemas.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

Deno.test("tctl bots add with a garbage key creates nothing; a good one creates both", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const names = async (kind: string) => {
    const r = await tctl(["get", kind, "--format", "json", ...conn]);
    assertEquals(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { metadata: { name: string } }[]).map((x) => x.metadata.name);
  };
  try {
    const bad = await tctl(["bots", "add", "x", "--initial-public-key", "garbage", ...conn]);
    assert(bad.code !== 0, "bots add with a garbage key succeeded");
    assertStringIncludes(bad.stderr, "initial_public_key");
    assertEquals(await names("bots"), [], "no bot without its token");
    assertEquals(await names("tokens"), []);

    const good = await tctl(["bots", "add", "x", ...conn]);
    assertEquals(good.code, 0, good.stderr);
    assertEquals(await names("bots"), ["x"]);
    assertEquals(await names("tokens"), ["x"]);

    // The server side: one resource refused (the token exists) refuses the batch.
    const id = await parseIdentityFile(await Deno.readTextFile(auth.identity));
    const admin = new AdminApiClient({
      baseUrl: auth.url,
      signer: { certDer: id.certDer, privateKey: id.privateKey },
    });
    const token = (await admin.get("token", "x")) as Token;
    const bot: Bot = {
      kind: "bot",
      version: "v1",
      metadata: { name: "y" },
      spec: { roles: [], traits: [] },
    };
    const clash = { ...token, metadata: { name: "x" }, status: undefined } as Token;
    const err = await admin.putAll([bot, clash], "create").then(() => null, (e) => e);
    assert(isKeyboundError(err, "ALREADY_EXISTS"), String(err));
    assertEquals(await names("bots"), ["x"], "bot y was not created");
  } finally {
    await auth.stop();
  }
});
