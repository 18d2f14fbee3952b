/**
 * The bot Worker: a thin HTTP front for the {@linkcode BotIdentity} Durable
 * Object (one object per join token). Other Workers in the account should
 * call the object over RPC instead (see docs/workers.md).
 *
 * Routes:
 * - `GET /readyz`: readiness (200 when healthy, 503 otherwise); no secrets.
 * - `GET /jwt-svid?audience=AUD`: a JWT-SVID for `AUD`.
 * - `GET /x509`: the bot's certificates (never its private key).
 *
 * The credential routes need `Authorization: Bearer <BOT_API_TOKEN>` and do
 * not exist unless that secret is set. A cron trigger (`scheduled`) re-arms
 * the renewal alarm should it ever be lost.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import { timingSafeEqualString } from "../../src/crypto/random.ts";
import type { BotEnv } from "./bot_config.ts";
import type { BotIdentityRpc, RpcError } from "./bot_identity_rpc.ts";
import type { DurableObjectStub, ExecutionContext } from "./types.ts";

export { BotIdentity } from "./bot_identity_do.ts";

function botStub(env: BotEnv): DurableObjectStub<BotIdentityRpc> {
  return env.BOT_IDENTITY.get(env.BOT_IDENTITY.idFromName(env.TBOT_TOKEN));
}

function failure(err: KeyboundError | RpcError): Response {
  const status = err instanceof KeyboundError ? err.status : new KeyboundError(err.code, "").status;
  return Response.json({ error: { code: err.code, message: err.message } }, { status });
}

async function authorized(request: Request, env: BotEnv): Promise<KeyboundError | null> {
  if (!env.BOT_API_TOKEN) return new KeyboundError("NOT_FOUND", "no such route");
  const presented = /^Bearer +(\S+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  if (presented && await timingSafeEqualString(presented, env.BOT_API_TOKEN)) return null;
  return new KeyboundError("UNAUTHENTICATED", "this route needs the bot API bearer token");
}

export default {
  /** Serves readiness and, to holders of BOT_API_TOKEN, the bot's credentials. */
  async fetch(request: Request, env: BotEnv): Promise<Response> {
    const url = new URL(request.url);
    const bot = botStub(env);
    if (request.method !== "GET") return failure(new KeyboundError("BAD_REQUEST", "use GET"));
    if (url.pathname === "/readyz") {
      const r = await bot.start();
      return Response.json(r, { status: r.status === "healthy" ? 200 : 503 });
    }
    if (url.pathname !== "/jwt-svid" && url.pathname !== "/x509") {
      return failure(new KeyboundError("NOT_FOUND", "no such route"));
    }
    const denied = await authorized(request, env);
    if (denied) return failure(denied);
    if (url.pathname === "/x509") {
      const r = await bot.x509(false);
      return r.ok ? Response.json(r.credentials) : failure(r.error);
    }
    const audience = url.searchParams.get("audience");
    if (!audience) return failure(new KeyboundError("BAD_PARAMETER", "audience is required"));
    const r = await bot.jwtSvid(audience);
    return r.ok
      ? Response.json(r.svid, { headers: { "cache-control": "no-store" } })
      : failure(r.error);
  },

  /** Cron trigger: makes sure the bot has joined and its alarm is armed. */
  scheduled(_event: unknown, env: BotEnv, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(botStub(env).start());
    return Promise.resolve();
  },
};
