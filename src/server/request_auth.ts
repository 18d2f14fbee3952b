/**
 * Server side of signed requests (docs/protocol.md §2): verifies the
 * `Authorization: Keybound <JWS>` header against the cluster's user CA, the
 * request line and body, the clock and the replay store, and checks locks.
 * Also the hono middlewares that guard the admin and bot APIs.
 *
 * @module
 */
import { compactVerify, decodeProtectedHeader } from "jose";
import type { Context, MiddlewareHandler } from "hono";
import type * as z from "zod";
import { AccessDeniedError, CaKeyDroppedError, KeyboundError } from "../errors.ts";
import { parseCertificate } from "../pki/mod.ts";
import { algOf } from "../crypto/keys.ts";
import {
  bodyHash,
  canonicalRequestPath,
  SIGNED_REQUEST_SCHEME,
  SIGNED_REQUEST_TYP,
  type SignedRequestClaims,
  SignedRequestClaimsSchema,
  SignedRequestHeader,
} from "../protocol/signed_request.ts";
import { ADMIN_ROLE } from "../protocol/subject.ts";
import { findLockInForce, lockedError, type LockSubject } from "./locks.ts";
import type { Lock } from "../resources/schemas.ts";
import { sha256 } from "../crypto/random.ts";
import { fromBase64, fromUtf8, toHex } from "../util/encoding.ts";
import type { ServerContext } from "./context.ts";
import type { AppEnv, VerifiedIdentity } from "./hono_env.ts";
import { seenRequestKey } from "./keys.ts";
import { notAnIdentity, verifyClientCertificate } from "./verified_certs.ts";
import { assertBrowserEnrolled } from "./web/browsers.ts";

/** Largest accepted `|now − iat|`, seconds. */
export const SIGNED_REQUEST_MAX_SKEW_S = 60;
/** How long a `jti` is remembered. */
export const JTI_RETENTION_MS = 5 * 60 * 1000;

/** The parts of an HTTP request a signature covers. */
export interface SignedRequestInput {
  /** HTTP method. */
  method: string;
  /** Request path (URL pathname, percent-encoded as received). */
  path: string;
  /** Raw body bytes (empty for none). */
  body: Uint8Array;
  /** The `Authorization` header, or null when absent. */
  authorization: string | null;
}

/** Options of {@linkcode verifySignedRequest}. */
export interface VerifyOptions {
  /** Record the `jti` and reject replays (everything except join `continue`). */
  recordJti: boolean;
  /**
   * Skip rule 6 (locks on the user or bot instance) because the caller checks
   * them itself: a join `continue` does, in the same listing as the token's
   * locks, after the proof of possession.
   */
  callerChecksLocks?: boolean;
}

function unauthenticated(message: string, cause?: unknown): KeyboundError {
  return new KeyboundError("UNAUTHENTICATED", message, cause ? { cause } : undefined);
}

/**
 * Verifies a signed request. Returns null when there is no `Authorization`
 * header; throws `UNAUTHENTICATED` when there is one that does not verify and
 * `LOCKED` when a lock targets the identity's user or bot instance.
 *
 * @example Verify the signature of an incoming request
 * ```ts ignore
 * import { verifySignedRequest, type ServerContext } from "@keybound/keybound";
 *
 * declare const ctx: ServerContext;
 * declare const req: Request;
 * const identity = await verifySignedRequest(ctx, {
 *   method: req.method,
 *   path: new URL(req.url).pathname,
 *   body: new Uint8Array(await req.arrayBuffer()),
 *   authorization: req.headers.get("authorization"),
 * }, { recordJti: true });
 * console.log(identity?.username ?? "unsigned");
 * ```
 */
export async function verifySignedRequest(
  ctx: ServerContext,
  req: SignedRequestInput,
  options: VerifyOptions,
): Promise<VerifiedIdentity | null> {
  if (req.authorization === null) return null;
  const m = /^(\S+) +(\S+)$/.exec(req.authorization.trim());
  if (!m || m[1].toLowerCase() !== SIGNED_REQUEST_SCHEME.toLowerCase()) {
    throw unauthenticated('Authorization header must be "Keybound <compact JWS>"');
  }
  const jws = m[2];
  let header: z.infer<typeof SignedRequestHeader>;
  try {
    const h = SignedRequestHeader.safeParse(decodeProtectedHeader(jws));
    if (!h.success) throw h.error;
    header = h.data;
  } catch (cause) {
    throw unauthenticated(
      `signed request: protected header must have alg EdDSA or ES256, typ "${SIGNED_REQUEST_TYP}" and one x5c certificate`,
      cause,
    );
  }
  const now = ctx.now();
  let der: Uint8Array;
  try {
    der = fromBase64(header.x5c[0]);
  } catch (cause) {
    throw unauthenticated("signed request: x5c is not base64", cause);
  }
  let verified: Awaited<ReturnType<typeof verifyClientCertificate>>;
  try {
    verified = await verifyClientCertificate(ctx, der, now, "signed request");
  } catch (e) {
    if (e instanceof CaKeyDroppedError) {
      throw await droppedKeyRefusal(e, { der, jws, header, req, now });
    }
    throw e;
  }
  const publicKey = verified.publicKey;
  const claims = await verifiedClaims({ jws, header, req, now }, publicKey);
  const subject = verified.identity;
  // Output certificates share the bot's name but must never act as its identity.
  if (subject.usage !== undefined) throw notAnIdentity("signed request", subject.usage);
  if (!options.callerChecksLocks) {
    await assertNotLocked(ctx, {
      user: subject.username,
      bot_instance_id: subject.botInstanceId,
      join_token: subject.joinToken,
    }, now);
  }
  // A console certificate lives only as long as its browser's record (tctl web rm).
  if (subject.browserId !== undefined) {
    await assertBrowserEnrolled(ctx, subject.browserId, verified.sha256, now);
  }
  if (options.recordJti) await recordJti(ctx, claims.jti, now);
  return {
    ...subject,
    publicKey,
    cert: verified.cert,
    certSha256: verified.sha256,
    ...(claims.chash === undefined ? {} : { chash: claims.chash }),
  };
}

/** What a signature is checked against. */
interface SignedParts {
  jws: string;
  header: z.infer<typeof SignedRequestHeader>;
  req: SignedRequestInput;
  now: Date;
}

/**
 * The claims of a request signed with `publicKey`, once the signature, the
 * request line, the body hash and the clock check out; `UNAUTHENTICATED`
 * otherwise.
 */
async function verifiedClaims(p: SignedParts, publicKey: CryptoKey): Promise<SignedRequestClaims> {
  const { jws, header, req, now } = p;
  if (algOf(publicKey) !== header.alg) {
    throw unauthenticated("signed request: alg does not match the certificate's key");
  }
  // The body's hash runs beside the signature check (each is a WebCrypto call
  // waiting on another thread); it is compared only once the signature holds.
  const bsh = bodyHash(req.body);
  bsh.catch(() => {});
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, publicKey, { algorithms: [header.alg] }));
  } catch (cause) {
    throw unauthenticated("signed request: signature does not verify", cause);
  }
  let claims: SignedRequestClaims;
  try {
    const parsed = SignedRequestClaimsSchema.safeParse(JSON.parse(fromUtf8(payload)));
    if (!parsed.success) throw parsed.error;
    claims = parsed.data;
  } catch (cause) {
    throw unauthenticated("signed request: payload must carry htm, htu, iat, jti and bsh", cause);
  }
  if (claims.htm !== req.method.toUpperCase()) {
    throw unauthenticated("signed request: htm does not match the request method");
  }
  if (claims.htu !== canonicalRequestPath(req.path)) {
    throw unauthenticated("signed request: htu does not match the request path");
  }
  if (claims.bsh !== await bsh) {
    throw unauthenticated("signed request: bsh does not match the request body");
  }
  if (Math.abs(now.getTime() / 1000 - claims.iat) > SIGNED_REQUEST_MAX_SKEW_S) {
    throw unauthenticated(
      `signed request: iat is more than ${SIGNED_REQUEST_MAX_SKEW_S}s from the server's time`,
    );
  }
  return claims;
}

/**
 * The `CA_KEY_DROPPED` answer to a request whose certificate a dropped user
 * CA key issued, marked with the certificate's hash (`provenHolder`) when the
 * certificate is within its validity and the request was signed with its own
 * key: a live bot that missed a rotation, which the rate limit does not
 * charge for its first few answers (a fleet behind one address recovers
 * together). Anything short of that — an expired certificate, a copied one
 * signed by another key, a bad signature — is the same answer, charged as
 * any failed credential. Nothing is stored for it (no `jti` marker): replay
 * protection of a refusal buys nothing against the holder, who can sign
 * fresh requests, and would turn the path into backend writes.
 */
async function droppedKeyRefusal(
  refusal: CaKeyDroppedError,
  p: SignedParts & { der: Uint8Array },
): Promise<CaKeyDroppedError> {
  try {
    const cert = parseCertificate(p.der);
    if (p.now < cert.notBefore || p.now > cert.notAfter) return refusal;
    await verifiedClaims(p, await cert.publicKey());
  } catch {
    return refusal;
  }
  return new CaKeyDroppedError(refusal.message, toHex(await sha256(p.der)));
}

/**
 * Throws `LOCKED` if a lock in force matches `subject`. A lock matches when
 * every target field it sets equals the subject's (Teleport's rule), so one
 * rule holds for signed requests and joins alike. `stored`: see
 * {@linkcode findLockInForce}.
 */
export async function assertNotLocked(
  ctx: ServerContext,
  subject: LockSubject,
  now: Date,
  stored?: Promise<Lock[]>,
): Promise<void> {
  const lock = await findLockInForce(ctx, subject, now, stored);
  if (lock) throw lockedError(lock);
}

/** Records `jti` atomically; throws `UNAUTHENTICATED` if it was seen and has not expired. */
async function recordJti(ctx: ServerContext, jti: string, now: Date): Promise<void> {
  const key = seenRequestKey(jti);
  const expiresAt = now.getTime() + JTI_RETENTION_MS;
  // Backends treat an expired marker as absent, also to this check.
  const r = await ctx.backend.commit({
    checks: [{ key, version: null }],
    mutations: [{ type: "set", key, value: true, expiresAt }],
  });
  if (!r.ok) throw unauthenticated("signed request: jti was already used (replayed request)");
}

/** Verifies the signed request of a hono request; the body stays readable afterwards. */
async function verifyHonoRequest(
  ctx: ServerContext,
  c: Context<AppEnv>,
): Promise<VerifiedIdentity | null> {
  // hono caches the body, so handlers can still call c.req.json() or text().
  const body = new Uint8Array(await c.req.arrayBuffer());
  return verifySignedRequest(ctx, {
    method: c.req.method,
    path: new URL(c.req.url).pathname,
    body,
    authorization: c.req.header("authorization") ?? null,
  }, { recordJti: true });
}

function requireIdentity(identity: VerifiedIdentity | null, what: string): VerifiedIdentity {
  if (!identity) {
    throw unauthenticated(`${what} requires a signed request (Authorization: Keybound <JWS>)`);
  }
  return identity;
}

/** Middleware: a signed request by an identity with the `@admin` role (401 / 403 otherwise). */
export function requireAdmin(ctx: ServerContext): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const identity = requireIdentity(await verifyHonoRequest(ctx, c), "the admin API");
    if (!identity.roles.includes(ADMIN_ROLE)) {
      throw new AccessDeniedError(`the admin API requires the ${ADMIN_ROLE} role`);
    }
    c.set("identity", identity);
    await next();
  };
}

/** Middleware: a signed request by a bot certificate (401 / 403 otherwise). */
export function requireBot(ctx: ServerContext): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const identity = requireIdentity(await verifyHonoRequest(ctx, c), "the bot API");
    if (identity.botName === undefined || identity.botInstanceId === undefined) {
      throw new AccessDeniedError("the bot API requires a bot certificate");
    }
    c.set("identity", identity);
    await next();
  };
}
