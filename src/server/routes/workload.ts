/**
 * Routes of host certificates and workload identity (docs/protocol.md §8):
 * three bot-authenticated issuing calls and two public trust documents.
 * Mounted at the root because `/.well-known/jwks.json` is outside `/v1`.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import {
  JWKS_PATH,
  JWT_SVID_PATH,
  JwtSvidRequest,
  SPIFFE_BUNDLE_PATH,
  SSH_HOST_CERT_PATH,
  SshHostCertRequest,
  X509_SVID_PATH,
  X509SvidRequest,
} from "../../protocol/workload_messages.ts";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { readJson } from "../http.ts";
import { requireBot } from "../request_auth.ts";
import { jwks, spiffeBundle } from "../workload/bundle.ts";
import {
  issueJwtSvid,
  issueSshHostCert,
  issueX509Svid,
  type VerifiedBot,
} from "../workload/issue.ts";

/** Trust documents change only with CA rotation; caches may keep them briefly. */
const PUBLIC_CACHE_CONTROL = "public, max-age=300";

function botOf(c: Context<AppEnv>): VerifiedBot {
  // requireBot guarantees both fields.
  return c.get("identity") as VerifiedBot;
}

/** Builds the router; mounted at `/` by the app. */
export function workloadRoutes(ctx: ServerContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post(SSH_HOST_CERT_PATH, requireBot(ctx), async (c) => {
    const body = await readJson(c, SshHostCertRequest);
    const r = await issueSshHostCert(ctx, botOf(c), {
      publicKey: body.public_key,
      principals: body.principals,
      ttlSeconds: body.ttl_seconds,
      remoteAddr: c.env?.remoteAddr,
    });
    return c.json({
      ssh_cert: r.sshCert,
      user_ca_keys: r.userCaKeys,
      expires: r.expires.toISOString(),
    });
  });

  app.post(X509_SVID_PATH, requireBot(ctx), async (c) => {
    const body = await readJson(c, X509SvidRequest);
    const r = await issueX509Svid(ctx, botOf(c), {
      name: body.selector.name,
      publicKeyPem: body.public_key,
      ttlSeconds: body.ttl_seconds,
      remoteAddr: c.env?.remoteAddr,
    });
    return c.json({
      spiffe_id: r.spiffeId,
      svid: r.svid,
      chain: [],
      bundle: r.bundle,
      expires: r.expires.toISOString(),
    });
  });

  app.post(JWT_SVID_PATH, requireBot(ctx), async (c) => {
    const body = await readJson(c, JwtSvidRequest);
    const r = await issueJwtSvid(ctx, botOf(c), {
      name: body.selector.name,
      audiences: body.audiences,
      ttlSeconds: body.ttl_seconds,
      remoteAddr: c.env?.remoteAddr,
    });
    return c.json({ spiffe_id: r.spiffeId, jwt: r.jwt, expires: r.expires.toISOString() });
  });

  app.get(JWKS_PATH, async (c) => {
    c.header("Cache-Control", PUBLIC_CACHE_CONTROL);
    return c.json(await jwks(ctx));
  });

  app.get(SPIFFE_BUNDLE_PATH, async (c) => {
    c.header("Cache-Control", PUBLIC_CACHE_CONTROL);
    return c.json(await spiffeBundle(ctx));
  });

  return app;
}
