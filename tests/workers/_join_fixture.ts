/**
 * Test helpers shared by the Worker tests: provisioning a bot plus a
 * registration-secret token through the admin API. (The in-memory bound key
 * store is `tests/_key_store.ts`.)
 *
 * @module
 */
import { boundKeypairToken } from "../../src/resources/token_rules.ts";
import type { AdminApi } from "../../src/cli/api_client.ts";
import { Bot, Role, Token, WorkloadIdentity } from "../../src/resources/schemas.ts";
import { toHex } from "../../src/util/encoding.ts";
import type { StartWorkerOptions } from "./_harness.ts";

/**
 * Creates bot `name` with `roles` and token `name` (registration secret,
 * recovery limit 1 unless given); returns the secret.
 */
export async function provisionBot(
  api: AdminApi,
  name: string,
  roles: string[] = [],
  recoveryLimit = 1,
): Promise<string> {
  await api.put(
    Bot.parse({ kind: "bot", version: "v1", metadata: { name }, spec: { roles } }),
    "create",
  );
  const { item } = await api.put(
    Token.parse(
      boundKeypairToken(name, name, {
        onboarding: {},
        recovery: { limit: recoveryLimit, mode: "standard" },
      }),
    ),
    "create",
  );
  const secret = (item as Token).status?.bound_keypair?.registration_secret;
  if (!secret) throw new Error("the created token has no registration secret");
  return secret;
}

/**
 * How the benches start the bot Worker: class `className` as its
 * `BOT_IDENTITY` object, token `token` with `secret`, a fresh storage KEK, and
 * the auth service at `authUrl` reached through the bot's `AUTH` binding
 * (workerd's own HTTP client, as a deployed Worker's: a global fetch would go
 * through miniflare's interceptor Worker). `extra` adds to it.
 */
export function botWorkerOptions(
  authUrl: string,
  token: string,
  secret: string,
  className = "BenchBot",
  extra: StartWorkerOptions = {},
): StartWorkerOptions {
  return {
    ...extra,
    durableObjects: { BOT_IDENTITY: className },
    externalServices: { AUTH: new URL(authUrl).host, ...extra.externalServices },
    bindings: {
      AUTH_SERVER: authUrl,
      TBOT_TOKEN: token,
      TBOT_REGISTRATION_SECRET: secret,
      TBOT_STORAGE_KEK: toHex(crypto.getRandomValues(new Uint8Array(32))),
    },
  };
}

/** The role that lets a bot use every workload identity. */
export const SVID_ROLE = "svid-issuer";

/** Creates {@linkcode SVID_ROLE} and the workload identity `name` (`/bot/<bot name>`). */
export async function provisionWorkloadIdentity(api: AdminApi, name: string): Promise<void> {
  await api.put(
    Role.parse({
      kind: "role",
      version: "v7",
      metadata: { name: SVID_ROLE },
      spec: { allow: { workload_identity_labels: { "*": "*" } } },
    }),
    "create",
  );
  await api.put(
    WorkloadIdentity.parse({
      kind: "workload_identity",
      version: "v1",
      metadata: { name },
      spec: { spiffe: { id: "/bot/{{ user.bot_name }}" } },
    }),
    "create",
  );
}
