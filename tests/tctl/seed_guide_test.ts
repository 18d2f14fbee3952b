/**
 * The seed guide's tctl steps, verbatim, against a real auth service
 * subprocess: `tctl status`, `tctl create bot.yaml`,
 * `tctl create -f token-example.yaml`, and the jq pipeline reading the
 * registration secret.
 */
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { bash, startAuth } from "./_harness.ts";

const BOT_YAML = `kind: bot
version: v1
metadata:
  # name is a unique identifier for the Bot in the cluster.
  name: example
spec:
  # roles is a list of roles to grant to the Bot. Don't worry if you don't know
  # what roles you need to specify here, the Access Guides will walk you through
  # creating and assigning roles to the already created Bot.
  roles: []
`;

const TOKEN_YAML = `kind: token
version: v2
metadata:
  # This name will be used in tbot's \`onboarding.token\` field.
  name: example
spec:
  roles: [Bot]
  # bot_name should match the name of the bot created earlier in this guide.
  bot_name: example
  join_method: bound_keypair
  bound_keypair:
    recovery:
      mode: standard
      limit: 1
`;

Deno.test("seed guide: tctl status, create bot.yaml, create -f token-example.yaml, get | jq", async () => {
  const auth = await startAuth();
  try {
    await Deno.writeTextFile(`${auth.workDir}/bot.yaml`, BOT_YAML);
    await Deno.writeTextFile(`${auth.workDir}/token-example.yaml`, TOKEN_YAML);
    const opts = {
      cwd: auth.workDir,
      env: { TELEPORT_AUTH_SERVER: auth.address, TELEPORT_IDENTITY_FILE: auth.identity },
    };

    const status = await bash("tctl status", auth.binDir, opts);
    assertEquals(status.code, 0, status.stderr);
    const lines = status.stdout.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
    assertEquals(lines, [["Cluster", "test.example"], ["Version", "0.1.0"], [
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
      'ERROR: bot.yaml: document 1: [ALREADY_EXISTS] bot "example" already exists (use -f to overwrite)\n',
    );
  } finally {
    await auth.stop();
  }
});
