/**
 * Token buckets per source, in a map with a size bound: each source may
 * send `burst` requests at once and `perSecond` on average. The map is
 * bounded (least recently used sources are evicted first), so a flood from
 * many addresses costs a fixed amount of memory; an evicted source simply
 * starts again with a full bucket.
 *
 * @module
 */
import { LruMap } from "../../util/lru.ts";

/** Rate-limit settings. */
export interface RateLimitConfig {
  /** Average requests per second allowed per source. */
  perSecond: number;
  /** Requests a source may send at once (bucket capacity). */
  burst: number;
  /** Most sources tracked at once (default {@linkcode DEFAULT_MAX_SOURCES}). */
  maxSources?: number;
}

/** Defaults of the auth service: generous for fleets behind one NAT address. */
export const DEFAULT_RATE_LIMIT: Readonly<Required<RateLimitConfig>> = {
  perSecond: 20,
  burst: 200,
  maxSources: 100_000,
};

/** Default bound of tracked sources (about 100 bytes each). */
export const DEFAULT_MAX_SOURCES = DEFAULT_RATE_LIMIT.maxSources;

/** Outcome of {@linkcode TokenBuckets.take}. */
export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/**
 * Token buckets keyed by source.
 *
 * @example
 * ```ts
 * import { TokenBuckets } from "./token_bucket.ts";
 * const buckets = new TokenBuckets({ perSecond: 1, burst: 2 });
 * buckets.take("203.0.113.7", 0); // { ok: true }
 * buckets.take("203.0.113.7", 0); // { ok: true }
 * buckets.take("203.0.113.7", 0); // { ok: false, retryAfterSeconds: 1 }
 * ```
 */
export class TokenBuckets {
  readonly #buckets: LruMap<string, Bucket>;
  readonly #perSecond: number;
  readonly #burst: number;

  /** @param config rates and the bound on tracked sources */
  constructor(config: RateLimitConfig) {
    for (const [name, v] of Object.entries(config)) {
      if (!(typeof v === "number" && v > 0 && Number.isFinite(v))) {
        throw new RangeError(`rate limit ${name}: must be a positive number, got ${v}`);
      }
    }
    this.#perSecond = config.perSecond;
    this.#burst = config.burst;
    this.#buckets = new LruMap(config.maxSources ?? DEFAULT_MAX_SOURCES);
  }

  #level(b: Bucket | undefined, nowMs: number): number {
    if (!b) return this.#burst;
    const elapsed = Math.max(0, nowMs - b.updatedMs) / 1000;
    return Math.min(this.#burst, b.tokens + elapsed * this.#perSecond);
  }

  #refusal(tokens: number): TakeResult {
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.#perSecond)) };
  }

  /** Takes one token from `source`'s bucket, or says how long until one is back. */
  take(source: string, nowMs: number): TakeResult {
    const tokens = this.#level(this.#buckets.peek(source), nowMs);
    const ok = tokens >= 1;
    // Setting marks the source most recently used; the least recently used go beyond the bound.
    this.#buckets.set(source, { tokens: ok ? tokens - 1 : tokens, updatedMs: nowMs });
    return ok ? { ok: true } : this.#refusal(tokens);
  }

  /** Whether `source` has a token now, without taking it. */
  peek(source: string, nowMs: number): TakeResult {
    const tokens = this.#level(this.#buckets.peek(source), nowMs);
    return tokens >= 1 ? { ok: true } : this.#refusal(tokens);
  }

  /** Number of sources tracked now (at most `maxSources`). */
  get size(): number {
    return this.#buckets.size;
  }
}
