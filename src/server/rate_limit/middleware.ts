/**
 * Per-source rate limiting of everything an unauthenticated client can do:
 * every request without credentials (an onboarding or recovery join, any
 * probe) and every request to a route that ignores credentials (discovery,
 * CA and key bundles, console enrollment and pages) takes a token from its
 * source's bucket. A request with credentials (a refresh join, the bot and
 * admin APIs) is let through while the bucket has tokens and takes one only
 * if it fails (any 4xx or 5xx answer), so a fleet renewing through one NAT or
 * load balancer address is not charged for its own traffic, while a junk
 * `Authorization` header buys nothing: whatever route answers it, a failure
 * is charged. One failure is not, a few times per certificate and up to a
 * ceiling per source: `CA_KEY_DROPPED` for a live certificate and a request
 * signed with its own key, a genuine bot of this cluster that missed a
 * rotation (a fleet behind one address meets it together after a user CA
 * rotation, and must not be locked out by 429s while it recovers).
 *
 * A refused request is answered `429 RATE_LIMITED` with `Retry-After`
 * before anything is parsed, stored or logged.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { CaKeyDroppedError, KeyboundError } from "../../errors.ts";
import { JWKS_PATH, SPIFFE_BUNDLE_PATH } from "../../protocol/workload_messages.ts";
import { WEB_ENROLL_PATH } from "../../protocol/web.ts";
import type { AppEnv } from "../hono_env.ts";
import { sourceAddress } from "./source.ts";
import { type RateLimitConfig, type TakeResult, TokenBuckets } from "./token_bucket.ts";

const PUBLIC_PATHS = new Set(["/v1/ping", JWKS_PATH, SPIFFE_BUNDLE_PATH, WEB_ENROLL_PATH, "/web"]);

/** True for the routes that answer without looking at credentials. */
export function isPublicPath(path: string): boolean {
  return PUBLIC_PATHS.has(path) || path.startsWith("/v1/ca/") || path.startsWith("/web/");
}

/** Uncharged `CA_KEY_DROPPED` answers per certificate: a bot needs one or two before it recovers. */
const FREE_DROPPED_ANSWERS = 5;
/** ... regained over this long. */
const FREE_DROPPED_WINDOW_S = 600;
/** Certificates tracked for it (least recently used evicted, like the sources). */
const FREE_DROPPED_CERTIFICATES = 10_000;
/**
 * Uncharged `CA_KEY_DROPPED` answers per source at once, as a multiple of the
 * source's burst, regained at the source's rate: 2,000 answers at once behind
 * one address (default burst 200), a fleet of 1,000–2,000 bots at one or two each, meet no
 * charged one, while whoever holds a
 * dropped CA key, and so can mint certificates without end, gets at most that
 * many and then the source's own rate again (review-ca N5).
 */
const FREE_DROPPED_BURSTS_PER_SOURCE = 10;

function refusal(c: Context<AppEnv>, result: TakeResult & { ok: false }): Response {
  const err = new KeyboundError(
    "RATE_LIMITED",
    `too many requests from this address; retry in ${result.retryAfterSeconds} s`,
    { details: { retry_after_seconds: result.retryAfterSeconds } },
  );
  c.header("Retry-After", String(result.retryAfterSeconds));
  return c.json(err.toJSON(), 429);
}

/**
 * The middleware over one set of buckets.
 * @param config rates and the bound on tracked sources
 * @param now clock in epoch milliseconds
 */
export function rateLimiter(
  config: RateLimitConfig,
  now: () => number = Date.now,
): MiddlewareHandler<AppEnv> {
  const buckets = new TokenBuckets(config);
  // A CA_KEY_DROPPED refusal of a live certificate signed with its own key (a bot of this cluster
  // that missed a rotation, request_auth.ts) is not charged to its source, a few times per
  // certificate: a fleet behind one address recovering together meets no 429s, and even the
  // holder of such a certificate gets a bounded number of free answers. Certificates are free to
  // mint for whoever holds the dropped key itself, so the source has a ceiling too.
  const freeDropped = new TokenBuckets({
    perSecond: FREE_DROPPED_ANSWERS / FREE_DROPPED_WINDOW_S,
    burst: FREE_DROPPED_ANSWERS,
    maxSources: FREE_DROPPED_CERTIFICATES,
  });
  const freeDroppedBySource = new TokenBuckets({
    ...config,
    burst: config.burst * FREE_DROPPED_BURSTS_PER_SOURCE,
  });
  // Both allowances are looked at before either is spent: an answer the source's ceiling charges
  // must not also use up the certificate's own allowance (review-so S2).
  const uncharged = (err: unknown, source: string) => {
    if (!(err instanceof CaKeyDroppedError) || err.provenHolder === undefined) return false;
    const at = now();
    if (!freeDropped.peek(err.provenHolder, at).ok) return false;
    if (!freeDroppedBySource.peek(source, at).ok) return false;
    freeDropped.take(err.provenHolder, at);
    freeDroppedBySource.take(source, at);
    return true;
  };
  return async (c, next) => {
    const source = sourceAddress(c.env?.remoteAddr);
    const path = new URL(c.req.url).pathname;
    if (isPublicPath(path) || c.req.header("authorization") === undefined) {
      const taken = buckets.take(source, now());
      if (!taken.ok) return refusal(c, taken);
      return await next();
    }
    const exhausted = buckets.peek(source, now());
    if (!exhausted.ok) return refusal(c, exhausted);
    await next();
    if (c.res.status >= 400 && !uncharged(c.error, source)) buckets.take(source, now());
  };
}
