/**
 * Issue #8's log injection against a real auth process: an unauthenticated
 * `begin` whose `token_name` holds terminal escapes or a forged line ends up
 * in the service's log escaped, as one inert line.
 *
 * @module
 */
import { assert, assertStringIncludes } from "../_assert.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { ANSI_PAYLOAD, NEWLINE_PAYLOAD, RAW_CONTROL } from "../util/_payloads.ts";

Deno.test("auth log: a begin with escapes or a newline in token_name is logged escaped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-log-injection-" });
  const auth = await spawnAuthService({
    dataDir: `${dir}/data`,
    args: ["--insecure-no-tls"],
    captureLog: true,
  });
  try {
    for (const token_name of [ANSI_PAYLOAD, NEWLINE_PAYLOAD]) {
      const r = await fetch(`${auth.url}/v1/join/bound-keypair/begin`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          token_name,
          public_tls_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
          public_ssh_key: "ssh-ed25519 AAAA",
        }),
      });
      await r.body?.cancel();
      assert(r.status >= 400, `begin was refused (${r.status})`);
    }
    for (let i = 0; i < 100 && auth.log().split("join failed").length < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const log = auth.log();
    for (const line of log.split("\n")) {
      assert(!RAW_CONTROL.test(line), `raw control character in ${JSON.stringify(line)}`);
      assert(!/^\S+ INFO {2}bot\.join success/.test(line), `forged line: ${line}`);
    }
    assertStringIncludes(log, String.raw`token="\u001b[2K\u001b[32mOK…\u001b]0;pwned\u0007"`);
    assertStringIncludes(
      log,
      String.raw`token="x\n2026-12-01T00:00:00.000Z INFO  bot.join success`,
    );
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
