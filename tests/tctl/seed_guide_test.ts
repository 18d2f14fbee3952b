/**
 * The seed guide's tctl steps, verbatim, against a real auth service
 * subprocess: `tctl status`, `tctl create bot.yaml`,
 * `tctl create -f token-example.yaml`, and the jq pipeline reading the
 * registration secret.
 */
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { bash, startAuth } from "./_harness.ts";
import { SEED_BOT_YAML, SEED_TOKEN_YAML } from "../_seed_guide.ts";
import { ignoreWithout } from "../_tools.ts";

/** A test that runs jq: ignored, saying why, outside CI without it. */
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, { ignore: ignoreWithout("seed guide's jq pipeline", "jq") }, fn);

test("seed guide: tctl status, create bot.yaml, create -f token-example.yaml, get | jq", async () => {
  const auth = await startAuth();
  try {
    await Deno.writeTextFile(`${auth.workDir}/bot.yaml`, SEED_BOT_YAML);
    await Deno.writeTextFile(`${auth.workDir}/token-example.yaml`, SEED_TOKEN_YAML);
    const opts = {
      cwd: auth.workDir,
      env: { TELEPORT_AUTH_SERVER: auth.address, TELEPORT_IDENTITY_FILE: auth.identity },
    };

    const status = await bash("tctl status", auth.binDir, opts);
    assertEquals(status.code, 0, status.stderr);
    // The guide's three lines first; the CAs' rotation table follows (#10).
    const lines = status.stdout.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
    assertEquals(lines.slice(0, 3), [["Cluster", "test.example"], ["Version", "0.1.0"], [
      "CA pin",
      auth.caPin,
    ]]);

    const bot = await bash("tctl create bot.yaml", auth.binDir, opts);
    assertEquals([bot.code, bot.stderr], [0, ""]);
    assertEquals(bot.stdout, 'bot "example" has been created\n');

    const token = await bash("tctl create -f token-example.yaml", auth.binDir, opts);
    assertEquals([token.code, token.stderr], [0, ""]);
    assertEquals(token.stdout, 'token "example" has been created\n');

    const secret = await bash(
      "tctl get token/example --format=json | jq -r '.[0].status.bound_keypair.registration_secret'",
      auth.binDir,
      opts,
    );
    assertEquals(secret.code, 0, secret.stderr);
    assertMatch(secret.stdout, /^[0-9a-f]{32}\n$/);

    // Re-applying the guide's file (no status) keeps the secret (Teleport #68211 improved on).
    const again = await bash("tctl create -f token-example.yaml", auth.binDir, opts);
    assertEquals(again.stdout, 'token "example" has been updated\n');
    const after = await bash(
      "tctl get token/example --format=json | jq -r '.[0].status.bound_keypair.registration_secret'",
      auth.binDir,
      opts,
    );
    assertEquals(after.stdout, secret.stdout);

    // Without -f, an existing resource is an error: one line on stderr, non-zero exit.
    const dup = await bash("tctl create bot.yaml", auth.binDir, opts);
    assert(dup.code !== 0, "create without -f must fail");
    assertEquals(dup.stdout, "");
    assertEquals(
      dup.stderr,
      'tctl: error [ALREADY_EXISTS]: bot.yaml: document 1: bot "example" already exists (use -f to overwrite); nothing was written\n',
    );
  } finally {
    await auth.stop();
  }
});
