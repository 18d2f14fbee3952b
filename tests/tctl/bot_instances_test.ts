/**
 * `tctl bots instances ls|show`, `get bot_instance/BOT/UUID` and `rm` against
 * an in-process auth app over http:// on loopback, with an instance record
 * seeded into its backend as a join would store it.
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { resourceKey } from "../../src/server/keys.ts";
import type { BotInstance } from "../../src/resources/schemas.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

const ID = "6f1c2a55-8a4e-4a43-9a57-2b0f5d1c9e01";
const PREVIOUS = "0b7d6a3c-1d2e-4f50-8c9a-0a1b2c3d4e5f";

const INSTANCE: BotInstance = {
  kind: "bot_instance",
  version: "v1",
  metadata: { name: `example/${ID}` },
  spec: { bot_name: "example", instance_id: ID, previous_instance_id: PREVIOUS },
  status: {
    initial_authentication: {
      authenticated_at: "2026-11-23T08:00:00.000Z",
      join_method: "bound_keypair",
      join_token: "example",
      generation: 1,
      public_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    },
    latest_authentications: [{
      authenticated_at: "2026-11-23T09:00:00.000Z",
      join_method: "bound_keypair",
      join_token: "example",
      generation: 4,
      public_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    }],
    latest_heartbeats: [{
      recorded_at: "2026-11-23T09:30:00.000Z",
      is_startup: false,
      version: "0.1.0",
      hostname: "build-07",
      uptime: "1h30m",
      join_method: "bound_keypair",
      one_shot: false,
      architecture: "amd64",
      os: "linux",
    }],
  },
};

Deno.test("bot instances: ls, show, get and rm", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  try {
    await auth.ctx.backend.commit({
      checks: [],
      mutations: [{
        type: "set",
        key: resourceKey("bot_instance", "example", ID),
        value: INSTANCE as never,
      }],
    });
    const ls = await tctl(["bots", "instances", "ls", ...conn]);
    assertEquals(ls.code, 0, ls.stderr);
    assertStringIncludes(ls.stdout, "ID  ");
    assertStringIncludes(
      ls.stdout,
      `example/${ID}  bound_keypair  build-07  2026-11-23T08:00:00.000Z  2026-11-23T09:30:00.000Z  4`,
    );
    const none = await tctl(["bots", "instances", "ls", "other", ...conn]);
    assertEquals(none.stdout.trimEnd().split("\n").length, 2, "header and rule only");

    const show = await tctl(["bots", "instance", "show", `example/${ID}`, ...conn]);
    assertEquals(show.code, 0, show.stderr);
    for (
      const part of [
        "Bot:         example",
        `Previous ID: ${PREVIOUS}`,
        "Generation:  4",
        "Initial Authentication:\n  Authenticated At: 2026-11-23T08:00:00.000Z",
        "Latest Authentication:\n  Authenticated At: 2026-11-23T09:00:00.000Z",
        "  Hostname:    build-07",
        "  Uptime:      1h30m",
        "  OS/Arch:     linux/amd64",
        "  One Shot:    false",
        "  Recorded At: 2026-11-23T09:30:00.000Z",
        `tctl get bot_instance/example/${ID}`,
      ]
    ) assertStringIncludes(show.stdout, part);

    const json = await tctl(["get", `bot_instance/example/${ID}`, "--format", "json", ...conn]);
    const [got] = JSON.parse(json.stdout);
    assertEquals(got.spec, INSTANCE.spec);
    const byBot = JSON.parse(
      (await tctl(["get", "bot_instances/example", "--format=json", ...conn])).stdout,
    );
    assertEquals(byBot.length, 1);

    const bad = await tctl(["bots", "instances", "show", "example", ...conn]);
    assertEquals(bad.code, 2, "a malformed argument is a usage error");
    assertStringIncludes(bad.stderr, "expected BOT/UUID");

    const rm = await tctl(["rm", `bot_instance/example/${ID}`, ...conn]);
    assertEquals(rm.stdout, `bot_instance "example/${ID}" has been deleted\n`);
    const gone = await tctl(["bots", "instances", "show", `example/${ID}`, ...conn]);
    assertStringIncludes(gone.stderr, "tctl: error [NOT_FOUND]: ");
  } finally {
    await auth.stop();
  }
});
