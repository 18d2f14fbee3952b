/**
 * `tctl web enroll | ls | rm` as a process against a served app: the URL it
 * prints enrolls a browser key once, flag errors exit 2 naming the flag,
 * server refusals exit 1 with their code.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { callApi } from "../../src/protocol/http_client.ts";
import { EnrollResponse, WEB_ENROLL_PATH } from "../../src/protocol/web.ts";
import { toBase64 } from "../../src/util/encoding.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

Deno.test("tctl web enroll prints a one-time URL; web ls lists the browser; web rm revokes it", async () => {
  const auth = await startInProcessAuth();
  try {
    const conn = ["--auth-server", auth.url, "-i", auth.identity];
    const enroll = await tctl(["web", "enroll", "--ttl", "5m", "--label", "kiosk 1", ...conn]);
    assertEquals(enroll.code, 0, enroll.stderr);
    const code = new RegExp(`${auth.url}/web/#enroll=([0-9a-f]{16}\\.[A-Za-z0-9_-]{43})\\n`)
      .exec(enroll.stdout)?.[1];
    assertMatch(code ?? "", /^[0-9a-f]{16}\./, enroll.stdout);
    const id = code!.split(".")[0];
    assertStringIncludes(enroll.stdout, `tctl web rm ${id}`);

    const key = await generateKeyPair("ES256");
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", key.publicKey));
    await callApi({ baseUrl: auth.url, fetch }, {
      method: "POST",
      path: WEB_ENROLL_PATH,
      body: { code, public_key: toBase64(spki) },
      response: EnrollResponse,
    });
    const ls = await tctl(["web", "ls", ...conn]);
    assertEquals(ls.code, 0, ls.stderr);
    assertMatch(ls.stdout, new RegExp(`^${id}\\s+kiosk 1\\s+web-${id}\\s`, "m"));
    const json = JSON.parse((await tctl(["web", "ls", "--format", "json", ...conn])).stdout);
    assertEquals(json.map((b: { id: string }) => b.id), [id]);

    const rm = await tctl(["web", "rm", id, ...conn]);
    assertEquals([rm.code, rm.stdout], [0, `Browser ${id} has been revoked.\n`]);
    const again = await tctl(["web", "rm", id, ...conn]);
    assertEquals(again.code, 1);
    assertStringIncludes(again.stderr, "[NOT_FOUND]");
    assertEquals((await tctl(["web", "ls", "--format", "json", ...conn])).stdout.trim(), "[]");
  } finally {
    await auth.stop();
  }
});

Deno.test("tctl web enroll: bad flags exit 2 naming the flag; limits come from the server", async () => {
  const auth = await startInProcessAuth();
  try {
    const conn = ["--auth-server", auth.url, "-i", auth.identity];
    const badTtl = await tctl(["web", "enroll", "--ttl", "soon", ...conn]);
    assertEquals(badTtl.code, 2);
    assertStringIncludes(badTtl.stderr, '--ttl: invalid duration "soon"');
    const badLabel = await tctl(["web", "enroll", "--label", "a/b", ...conn]);
    assertEquals(badLabel.code, 2);
    assertStringIncludes(badLabel.stderr, "--label: must be 1-64 letters");
    const tooLong = await tctl(["web", "enroll", "--ttl", "2h", ...conn]);
    assertEquals(tooLong.code, 1);
    assertStringIncludes(tooLong.stderr, "ttl_seconds");
  } finally {
    await auth.stop();
  }
});
