/**
 * The Worker bot's bindings go through the agent's config schema: the same
 * defaults and loopback rule as tbot.yaml, errors naming the binding.
 *
 * @module
 */
import { botConfig, type BotEnv } from "../../runtime-adapters/workers/bot_config.ts";
import { ConfigError } from "../../src/errors.ts";
import { assertEquals, assertThrows } from "../_assert.ts";

const env = (vars: Partial<BotEnv>) =>
  ({ AUTH_SERVER: "https://auth.example.com", TBOT_TOKEN: "edge-bot", ...vars }) as BotEnv;

Deno.test("bot config: tbot's defaults, the origin of the auth server, the secret", () => {
  const c = botConfig(env({ TBOT_REGISTRATION_SECRET: "s3cret" }));
  assertEquals(c.agent.credential_ttl, 3_600_000);
  assertEquals(c.agent.renewal_interval, 1_200_000);
  assertEquals(c.authServer, "https://auth.example.com");
  assertEquals(c.tokenName, "edge-bot");
  assertEquals(c.agent.onboarding.bound_keypair.registration_secret, "s3cret");
  assertEquals(
    botConfig(env({ AUTH_SERVER: "http://127.0.0.1:3025" })).authServer,
    "http://127.0.0.1:3025",
  );
  assertEquals(
    botConfig(env({ AUTH_SERVER: "http://[::1]:3025" })).authServer,
    "http://[::1]:3025",
  );
});

Deno.test("bot config: errors name the binding", () => {
  const cases: [Partial<BotEnv>, string][] = [
    [{ TBOT_TOKEN: undefined }, "TBOT_TOKEN: required: the name of the bound_keypair join token"],
    [{ AUTH_SERVER: "http://auth.example.com" }, "AUTH_SERVER: plain http:// is allowed only"],
    [{ AUTH_SERVER: "ftp://x" }, "AUTH_SERVER: must be host:port"],
    [{ TBOT_RENEWAL_INTERVAL: "soon" }, 'TBOT_RENEWAL_INTERVAL: invalid duration "soon"'],
    [
      { TBOT_RENEWAL_INTERVAL: "2h" },
      "TBOT_RENEWAL_INTERVAL must be shorter than TBOT_CREDENTIAL_TTL",
    ],
  ];
  for (const [vars, message] of cases) {
    const e = assertThrows(() => botConfig(env(vars)), ConfigError);
    assertEquals(e.message.startsWith(message), true, `${JSON.stringify(vars)}: ${e.message}`);
  }
});
