/**
 * The Worker-only way to obtain the first admin identity. On Deno the auth
 * service writes `admin-identity` into its data directory; a Worker has no
 * directory, so the operator sets a one-time bootstrap token as a Worker
 * secret (`wrangler secret put KEYBOUND_ADMIN_BOOTSTRAP_TOKEN`) and exchanges
 * it once at `POST /worker/admin-identity` for an identity file.
 *
 * Safety: the route does not exist unless the secret is set; the bearer token
 * is compared in constant time; each token value works exactly once (a
 * marker keyed by its SHA-256 is created atomically before anything is
 * issued, so concurrent attempts cannot both succeed); the answer is
 * `Cache-Control: no-store`; issuance is audited (`cert.create`).
 *
 * @module
 */
import { AccessDeniedError, KeyboundError } from "../../src/errors.ts";
import { sha256, timingSafeEqualString } from "../../src/crypto/random.ts";
import { auditMutations } from "../../src/server/audit.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { ADMIN_IDENTITY_TTL_MS, issueAdminIdentityFile } from "../../src/server/identity.ts";
import { toHex } from "../../src/util/encoding.ts";

/** The path of the bootstrap route (outside `/v1`: it is not part of the protocol). */
export const ADMIN_BOOTSTRAP_PATH = "/worker/admin-identity";
/** Shortest bootstrap token accepted: 128 bits as hex. */
export const MIN_BOOTSTRAP_TOKEN_LENGTH = 32;

function errorResponse(err: KeyboundError): Response {
  return Response.json(err.toJSON(), { status: err.status });
}

/**
 * Answers `POST /worker/admin-identity` with an admin identity file, at most
 * once per distinct `token`.
 *
 * @param request the HTTP request (bearer token in `Authorization`)
 * @param ctx the auth service context
 * @param token the configured bootstrap token, or undefined when unset
 */
export async function handleAdminBootstrap(
  request: Request,
  ctx: ServerContext,
  token: string | undefined,
): Promise<Response> {
  if (!token) {
    return errorResponse(
      new KeyboundError("NOT_FOUND", `no route for ${request.method} ${ADMIN_BOOTSTRAP_PATH}`),
    );
  }
  if (token.length < MIN_BOOTSTRAP_TOKEN_LENGTH) {
    ctx.log.error("KEYBOUND_ADMIN_BOOTSTRAP_TOKEN is too short; admin bootstrap disabled");
    return errorResponse(
      new KeyboundError("CONFIG_INVALID", "admin bootstrap is misconfigured on the server"),
    );
  }
  if (request.method !== "POST") {
    return errorResponse(new KeyboundError("BAD_REQUEST", `${ADMIN_BOOTSTRAP_PATH} needs POST`));
  }
  const presented = /^Bearer +(\S+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  if (!presented || !(await timingSafeEqualString(presented, token))) {
    return errorResponse(
      new KeyboundError("UNAUTHENTICATED", "admin bootstrap needs the bootstrap bearer token"),
    );
  }
  const remoteAddr = request.headers.get("cf-connecting-ip") ?? undefined;
  const marker = ["worker", "admin_bootstrap_used", toHex(await sha256(token))];
  const claimed = await ctx.backend.commit({
    checks: [{ key: marker, version: null }],
    mutations: [
      { type: "set", key: marker, value: { used_at: ctx.now().toISOString() } },
      ...auditMutations(ctx, {
        type: "cert.create",
        status: { success: true },
        ...(remoteAddr ? { connection: { remote_addr: remoteAddr } } : {}),
        cert_type: "admin_identity",
        identity: "admin",
        expires: new Date(ctx.now().getTime() + ADMIN_IDENTITY_TTL_MS).toISOString(),
      }),
    ],
  });
  if (!claimed.ok) {
    return errorResponse(
      new AccessDeniedError(
        "this bootstrap token was already used; set a new KEYBOUND_ADMIN_BOOTSTRAP_TOKEN to issue another admin identity",
      ),
    );
  }
  ctx.log.info("issued an admin identity through the Worker bootstrap route");
  return new Response(await issueAdminIdentityFile(ctx), {
    headers: { "content-type": "application/x-pem-file", "cache-control": "no-store" },
  });
}
