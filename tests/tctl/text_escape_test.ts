/**
 * Issue #8 item 2 (tctl half): control characters an unauthenticated client
 * puts into a `begin` (escape sequences, a newline with a forged row) reach
 * the audit log, and `tctl audit ls` and every other text view print them
 * escaped, never raw.
 *
 * @module
 */
import { JOIN_BEGIN_PATH } from "../../src/protocol/messages.ts";
import type { Lock } from "../../src/resources/schemas.ts";
import { locksTable } from "../../src/cli/tctl/text.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

const TERMINAL = "\u001b[2K\u001b[32mOK…\u001b]0;pwned\u0007";
const FORGED = "x\n2026-12-01T00:00:00.000Z  bot.join  success  bot_name=prod";
// Anything a terminal acts on, except the newlines that end lines.
// deno-lint-ignore no-control-regex -- finding control characters is the point
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/;

Deno.test("tctl audit ls escapes injected control characters and forged rows", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  try {
    for (const token_name of [TERMINAL, FORGED]) {
      const res = await fetch(auth.url + JOIN_BEGIN_PATH, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token_name, public_tls_key: "x", public_ssh_key: "y" }),
      });
      await res.body?.cancel();
      assertEquals(res.status, 400);
    }
    const ls = await tctl(["audit", "ls", ...conn]);
    assertEquals(ls.code, 0, ls.stderr);
    assert(!RAW_CONTROL.test(ls.stdout), `raw control character in:\n${ls.stdout}`);
    const lines = ls.stdout.trimEnd().split("\n");
    assertEquals(lines.length, 4, "header, rule and exactly two rows");
    assertStringIncludes(ls.stdout, "token_name=\\u001b[2K\\u001b[32mOK…\\u001b]0;pwned\\u0007 ");
    // A value with spaces is JSON-quoted in the summary, then escaped for the terminal.
    assertStringIncludes(ls.stdout, 'token_name="x\\\\n2026-12-01T00:00:00.000Z  bot.join');
    assert(!lines.some((l) => l.startsWith("2026-12-01T00:00:00.000Z")), "no forged row");

    // The JSON view keeps the exact value.
    const json = await tctl(["audit", "ls", "--format", "json", ...conn]);
    const names = JSON.parse(json.stdout).map((e: { token_name: string }) => e.token_name);
    assertEquals(names.sort(), [TERMINAL, FORGED].sort());
  } finally {
    await auth.stop();
  }
});

Deno.test("every table cell is escaped (locks as an example)", () => {
  const lock: Lock = {
    kind: "lock",
    version: "v2",
    metadata: { name: "l1" },
    spec: {
      target: { join_token: "t" },
      message: `stop${TERMINAL}\nl2  join_token=x  m  never  yes`,
    },
  };
  const text = locksTable([lock], new Date());
  assert(!RAW_CONTROL.test(text));
  assertEquals(text.trimEnd().split("\n").length, 3);
});
