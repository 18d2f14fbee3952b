/**
 * The validated-once cache of stored resources: the last value validated for
 * each recently read key (per backend object), its result deep-frozen and
 * shared with every reader, and returned again while the stored value is the
 * same JSON document. A join commit validates what it writes while the
 * backend stores it ({@linkcode validateWrite}), so the next refresh's first
 * reads find it here.
 *
 * @module
 */
import { checkJsonLimits } from "../../resources/limits.ts";
import type { Backend, Entry, Key } from "../../storage/backend.ts";
import { type Kind, type ResourceOf, schemaOf } from "../../resources/schemas.ts";
import type { AnyResource } from "../../resources/validate.ts";
import { LruMap } from "../../util/lru.ts";
import type { ServerContext } from "../context.ts";

/** A stored value that passed validation, kept for the next read of its key. */
interface Validated {
  /** The kind it was validated as. */
  kind: Kind;
  /** The stored value as read, compared with later reads. */
  raw: unknown;
  /** The schema's output, deep-frozen. */
  resource: AnyResource;
}

/** Validated stored values kept per backend. */
const VALIDATED_ENTRIES = 256;

/**
 * The largest value kept, in objects, arrays and strings, and in string
 * characters. A bot instance, the largest the join reads, has about 100
 * nodes and 3,000 characters; a role's pass-through rules may legally hold
 * 19,000 empty objects, which kept twice (raw and validated) in every entry
 * filled a 256 MB heap (review-join M1). Bounded so, an entry costs at most
 * about 70 KB, and the cache about 18 MB.
 */
const KEPT_MAX_NODES = 256;
const KEPT_MAX_CHARS = 8_192;

/** True if `value` is within {@linkcode KEPT_MAX_NODES} and {@linkcode KEPT_MAX_CHARS}; stops early. */
function smallEnoughToKeep(value: unknown): boolean {
  const stack: unknown[] = [value];
  let nodes = 0;
  let chars = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      chars += v.length;
    } else if (typeof v === "object" && v !== null) {
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        chars += k.length;
        stack.push((v as Record<string, unknown>)[k]);
      }
    } else continue;
    if (++nodes > KEPT_MAX_NODES || chars > KEPT_MAX_CHARS) return false;
  }
  return true;
}

/**
 * The last validated value of each recently read key, per backend object.
 * Per backend because two backends in one process (tests, a migration) may
 * hold different values under one key.
 */
const validatedByBackend = new WeakMap<Backend, LruMap<string, Validated>>();

/**
 * True if `a` and `b` are the same JSON document: same keys (in any order:
 * PostgreSQL's jsonb reorders them) and the same primitives. Values that are
 * not plain objects, arrays or primitives are never equal, so they are
 * always validated afresh.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return typeof a !== "object" || a === null || isPlain(a);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b) || !isPlain(a) || !isPlain(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let n = 0;
  for (const k in ao) {
    if (!Object.hasOwn(ao, k) || !Object.hasOwn(bo, k) || !sameJson(ao[k], bo[k])) return false;
    n++;
  }
  for (const k in bo) if (Object.hasOwn(bo, k)) n--;
  return n === 0;
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === Array.prototype || proto === null;
}

/** Freezes `v` and everything in it: a cached resource is shared by every reader. */
function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

/**
 * The stored value validated against its kind's schema (the limits walk,
 * then zod), or null if it fails either. The JSON limits and the schema
 * depend on the value alone, so a value equal to the last one validated for
 * its key gets that result again: the join reads the same token, bot and
 * roles several times per refresh, and they change far less often than they
 * are read. Equality of the values, not of backend versions, decides: a
 * version says nothing once a restored Durable Object or KV file hands out
 * numbers again. Comparing costs about what the limits walk alone did.
 *
 * What is returned may be shared with every other reader of the value, so
 * it is frozen: a caller that changes a resource builds a new object (they
 * all do, with spreads), and one that tried to change it in place would
 * throw instead of changing other readers' copies. `remember` is false for
 * listings, so a page of a thousand rows does not push out the join's
 * entries (nor pays for freezing what nobody shares). Only values that pass
 * and are small ({@linkcode smallEnoughToKeep}) are kept; the others are
 * validated at every read, as before, and are each reader's own.
 */
export function validatedValue<K extends Kind>(
  ctx: ServerContext,
  kind: K,
  entry: Entry<unknown>,
  remember: boolean,
): ResourceOf<K> | null {
  const cache = validatedByBackend.get(ctx.backend);
  const id = remember ? cacheId(entry.key) : "";
  const hit = remember ? cache?.get(id) : undefined;
  if (hit && hit.kind === kind && sameJson(hit.raw, entry.value)) {
    return hit.resource as ResourceOf<K>;
  }
  const data = validate(kind, entry.value);
  if (data === null) {
    // Not kept: a malformed value may be deeper than sameJson's recursion
    // may go (review-join S1), and it is rare; it is checked again each read.
    if (hit) cache!.delete(id);
    return null;
  }
  // Only a kept result is shared; a listing's rows are each reader's own.
  if (!remember || !smallEnoughToKeep(entry.value)) {
    if (hit) cache!.delete(id);
    return data;
  }
  const resource = deepFreeze(data);
  keep(ctx.backend, id, { kind, raw: entry.value, resource });
  return resource;
}

/** The cache's key of a backend key. */
function cacheId(key: Key): string {
  return key.join("\u0000");
}

/** `value` validated as a stored `kind` (the limits walk, then zod), or null if it fails. */
function validate<K extends Kind>(kind: K, value: unknown): ResourceOf<K> | null {
  // A value past the limits (stored before they existed) is skipped, not parsed.
  if (checkJsonLimits(value) !== null) return null;
  const parsed = schemaOf(kind).safeParse(value);
  return parsed.success ? parsed.data : null;
}

function keep(backend: Backend, id: string, validated: Validated): void {
  let cache = validatedByBackend.get(backend);
  if (!cache) validatedByBackend.set(backend, cache = new LruMap(VALIDATED_ENTRIES));
  cache.set(id, validated);
}

/**
 * Validates a resource that a commit in flight writes, exactly as the next
 * point read of it would (the limits walk, then the kind's schema; kept only
 * if it passes and {@linkcode smallEnoughToKeep}), and returns what keeps
 * the result for that read: call it once the commit succeeded. The join
 * writes the token and the bot instance that the next refresh reads first
 * (`begin`, `continue`); validating them here, while the backend stores
 * them and the main thread would otherwise wait, takes that validation off
 * the next refresh's path. Equality of values still decides at the read
 * (`sameJson`), so a value that another writer changed in between is
 * validated afresh. `value` must not be changed after this call: it is
 * frozen when kept, as the cache's results are.
 */
export function validateWrite(
  ctx: ServerContext,
  kind: Kind,
  key: Key,
  value: unknown,
): () => void {
  let data: AnyResource | null;
  try {
    data = validate(kind, value);
  } catch {
    // Never fails the commit in flight (awaited after this): the read validates then.
    data = null;
  }
  if (data === null || !smallEnoughToKeep(value)) return () => {};
  const backend = ctx.backend;
  return () =>
    keep(backend, cacheId(key), { kind, raw: deepFreeze(value), resource: deepFreeze(data) });
}
