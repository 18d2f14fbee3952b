/**
 * The resource store of the admin API: get, list, create/upsert and delete
 * resources by kind and name over the backend. Every write is one atomic
 * compare-and-swap on the entry's version that also stores the audit event.
 *
 * Stored values are the resources' JSON renderings (the YAML shapes) without
 * `metadata.revision`; reads set `metadata.revision` to the backend version.
 *
 * @module
 */
import { MAX_LIST_PAGE } from "../../protocol/admin.ts";
import { botUserName } from "../../protocol/subject.ts";
import { checkJsonLimits } from "../../resources/limits.ts";
import { AlreadyExistsError, BadParameterError, KeyboundError, NotFoundError } from "../../errors.ts";
import {
  type Backend,
  type Check,
  type Entry,
  isStrictlyUnder,
  type JsonValue,
  type Key,
  type Mutation,
} from "../../storage/backend.ts";
import {
  type Kind,
  ResourceName,
  type ResourceOf,
  schemaOf,
  type Token,
} from "../../resources/schemas.ts";
import {
  type AnyResource,
  certificateNameIssue,
  type CreatableResource,
  formatIssue,
} from "../../resources/validate.ts";
import { LruMap } from "../../util/lru.ts";
import { formatPath } from "../../util/zod_error.ts";
import { prepareTokenForWrite, type SecretGenerator } from "../../resources/token_rules.ts";
import { type AuditInput, auditMutations } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import { resourceKey, resourcePrefix } from "../keys.ts";
import { assertLockAllowed, locksChangedMutation } from "../locks.ts";

/** A resource as stored, with its backend version. */
export interface StoredResource<T extends AnyResource = AnyResource> {
  /** The resource (without `metadata.revision`). */
  resource: T;
  /** Backend version of the entry. */
  version: string;
}

/** Who performs a write, for audit events and lock metadata. */
export interface Actor {
  /** User name from the caller's certificate. */
  user: string;
  /** Peer address, when known. */
  remoteAddr?: string;
}

/** `create` refuses an existing resource; `upsert` overwrites it. */
export type WriteMode = "create" | "upsert";

/** Result of {@linkcode putResource}. */
export interface PutResult {
  /** What was stored. */
  stored: StoredResource;
  /** True if no live resource existed before. */
  created: boolean;
}

/** Attempts of a compare-and-swap write before giving up with `CONFLICT`. */
const MAX_WRITE_ATTEMPTS = 5;

/**
 * Backend key parts of a resource name. Bot instances are addressed as
 * `<bot>/<instance id>`; other names cannot contain `/`.
 */
export function nameParts(kind: Kind, name: string): string[] {
  if (kind === "bot_instance") {
    const parts = name.split("/");
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new BadParameterError(
        `bot_instance names have the form <bot>/<instance id>, got "${name}"`,
        { details: { path: "metadata.name" } },
      );
    }
    return parts;
  }
  if (!ResourceName.safeParse(name).success) {
    throw new BadParameterError(`invalid ${kind} name "${name}"`, {
      details: { path: "metadata.name" },
    });
  }
  return [name];
}

function isExpired(resource: AnyResource, now: Date): boolean {
  const expires = resource.metadata.expires;
  return expires !== undefined && Date.parse(expires) <= now.getTime();
}

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
function validatedValue<K extends Kind>(
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

/**
 * A stored entry validated against its kind's schema; null if malformed
 * (logged) or expired. Point reads `remember` the validation for the next read.
 */
function liveEntry<K extends Kind>(
  ctx: ServerContext,
  kind: K,
  entry: Entry<unknown> | null,
  remember = true,
): StoredResource<ResourceOf<K>> | null {
  if (!entry) return null;
  const resource = validatedValue(ctx, kind, entry, remember);
  if (!resource) {
    ctx.log.warn("ignoring malformed stored resource", { kind, key: entry.key.join("/") });
    return null;
  }
  if (isExpired(resource, ctx.now())) return null;
  return { resource, version: entry.version };
}

/** The resource with `metadata.revision` set to its version, as the API returns it. */
export function withRevision<T extends AnyResource>(stored: StoredResource<T>): T {
  return {
    ...stored.resource,
    metadata: { ...stored.resource.metadata, revision: stored.version },
  };
}

/** Reads one resource, validated against its kind's schema; null if absent or expired. */
export async function getResource<K extends Kind>(
  ctx: ServerContext,
  kind: K,
  name: string,
): Promise<StoredResource<ResourceOf<K>> | null> {
  const entry = await ctx.backend.get<unknown>(resourceKey(kind, ...nameParts(kind, name)));
  return liveEntry(ctx, kind, entry);
}

/** Largest page of {@linkcode listResources} (the wire contract's). */
export const MAX_RESOURCE_PAGE = MAX_LIST_PAGE;
/** Page size of {@linkcode listResources} when none is asked for. */
export const DEFAULT_RESOURCE_PAGE = 100;

/** Options of {@linkcode listResources}. */
export interface ResourceListOptions {
  /** Page size (default {@linkcode DEFAULT_RESOURCE_PAGE}, at most {@linkcode MAX_RESOURCE_PAGE}). */
  limit?: number;
  /** Cursor: the `next` of the previous page (a resource name, `bot/id` for instances). */
  after?: string;
  /** Bot instances only: the instances of this bot. */
  bot?: string;
}

/** One page of resources in name order; `next` is present when more may follow. */
export interface ResourcePage<T extends AnyResource = AnyResource> {
  /** Live resources of the page (expired or malformed entries are skipped). */
  items: StoredResource<T>[];
  /** Cursor of the following page. */
  next?: string;
}

/**
 * Lists one page of the live resources of a kind in name order. Reads the
 * rows of the page and one more, however many resources exist; an expired or
 * malformed row still counts towards the page, so a page may hold fewer items
 * than `limit` while `next` says more follow.
 */
export async function listResources<K extends Kind>(
  ctx: ServerContext,
  kind: K,
  options: ResourceListOptions = {},
): Promise<ResourcePage<ResourceOf<K>>> {
  const limit = options.limit ?? DEFAULT_RESOURCE_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RESOURCE_PAGE) {
    throw new BadParameterError(`limit: must be an integer from 1 to ${MAX_RESOURCE_PAGE}`, {
      details: { path: "limit" },
    });
  }
  if (options.bot !== undefined && kind !== "bot_instance") {
    throw new BadParameterError("bot: only bot_instance listings filter by bot", {
      details: { path: "bot" },
    });
  }
  const prefix = options.bot === undefined
    ? resourcePrefix(kind)
    : resourcePrefix(kind, ...nameParts("bot", options.bot));
  let after: Key | undefined;
  if (options.after !== undefined) {
    let parts: string[];
    try {
      parts = nameParts(kind, options.after);
    } catch {
      throw new BadParameterError("after: not a cursor returned by this listing", {
        details: { path: "after" },
      });
    }
    after = resourceKey(kind, ...parts);
    if (!isStrictlyUnder(after, prefix)) {
      throw new BadParameterError("after: not a cursor returned by this listing", {
        details: { path: "after" },
      });
    }
  }
  // One row more than the page tells whether another page follows.
  const entries = await ctx.backend.list<unknown>(prefix, { limit: limit + 1, after });
  const page = entries.slice(0, limit);
  const items: StoredResource<ResourceOf<K>>[] = [];
  for (const e of page) {
    const live = liveEntry(ctx, kind, e, false);
    if (live) items.push(live);
  }
  if (entries.length <= limit) return { items };
  const last = page[page.length - 1].key;
  return { items, next: last.slice(resourcePrefix(kind).length).join("/") };
}

function withoutRevision<T extends AnyResource>(resource: T): T {
  const { revision: _revision, ...metadata } = resource.metadata;
  return { ...resource, metadata } as T;
}

/** Server-owned fields and rules applied before a resource is stored. */
async function prepare(
  ctx: ServerContext,
  incoming: CreatableResource,
  existing: StoredResource | null,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<CreatableResource> {
  const resource = withoutRevision(incoming);
  switch (resource.kind) {
    case "token":
      return await prepareTokenForWrite(
        resource,
        existing?.resource.kind === "token" ? existing.resource : null,
        generateSecret,
      );
    case "bot": {
      const user = botUserName(resource.metadata.name);
      return { ...resource, status: { user_name: user, role_name: user } };
    }
    case "lock":
      assertLockAllowed(resource);
      return {
        ...resource,
        spec: {
          ...resource.spec,
          created_at: resource.spec.created_at ?? ctx.now().toISOString(),
          created_by: resource.spec.created_by ?? actor.user,
        },
      };
    case "role":
    case "workload_identity":
      return resource;
  }
}

function auditFor(resource: CreatableResource, actor: Actor, created: boolean): AuditInput {
  const connection = actor.remoteAddr ? { connection: { remote_addr: actor.remoteAddr } } : {};
  if (resource.kind === "lock") {
    return {
      type: "lock.created",
      status: { success: true },
      ...connection,
      lock_name: resource.metadata.name,
      target: resource.spec.target as JsonValue,
      message: resource.spec.message ?? "",
      created_by: resource.spec.created_by ?? actor.user,
    };
  }
  return {
    type: "resource.created",
    status: { success: true },
    ...connection,
    kind: resource.kind,
    name: resource.metadata.name,
    user: actor.user,
    overwritten: !created,
  };
}

function conflict(kind: Kind, name: string): KeyboundError {
  return new KeyboundError(
    "CONFLICT",
    `${kind} "${name}" was changed concurrently; retry`,
  );
}

/** One resource's part of a write: its precondition and mutations. */
interface WritePlan {
  kind: Kind;
  name: string;
  key: Key;
  created: boolean;
  check: Check;
  mutations: Mutation[];
}

/** Reads the current entry and builds the checked write of `incoming` (throws on refusal). */
async function planWrite(
  ctx: ServerContext,
  incoming: CreatableResource,
  mode: WriteMode,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<WritePlan> {
  const kind = incoming.kind;
  const name = incoming.metadata.name;
  const key = resourceKey(kind, ...nameParts(kind, name));
  if (isExpired(incoming, ctx.now())) {
    throw new BadParameterError(`metadata.expires: ${incoming.metadata.expires} is in the past`, {
      details: { path: "metadata.expires" },
    });
  }
  const entry = await ctx.backend.get<unknown>(key);
  const existing = liveEntry(ctx, kind, entry);
  if (existing && mode === "create") {
    throw new AlreadyExistsError(`${kind} "${name}" already exists`);
  }
  const revision = incoming.metadata.revision;
  // A revision asks for a conditional write: a resource deleted since it was
  // read must not come back because an old copy was saved.
  if (revision !== undefined && !existing) {
    throw new KeyboundError(
      "CONFLICT",
      `${kind} "${name}" was deleted since revision ${revision} was read; ` +
        "remove metadata.revision to create it again",
    );
  }
  if (existing && revision !== undefined && revision !== existing.version) {
    throw new KeyboundError(
      "CONFLICT",
      `${kind} "${name}" changed since revision ${revision} was read; ` +
        "fetch it again, or remove metadata.revision to overwrite it",
    );
  }
  const tooLong = certificateNameIssue(
    incoming,
    (existing?.resource ?? null) as CreatableResource | null,
  );
  if (tooLong) {
    throw new BadParameterError(formatIssue(tooLong), {
      details: { path: formatPath(tooLong.path) },
    });
  }
  const resource = await prepare(ctx, incoming, existing, actor, generateSecret);
  const expires = resource.metadata.expires;
  return {
    kind,
    name,
    key,
    created: existing === null,
    check: { key, version: entry?.version ?? null },
    mutations: [
      {
        type: "set",
        key,
        value: resource as unknown as JsonValue,
        ...(expires ? { expiresAt: Date.parse(expires) } : {}),
      },
      ...auditMutations(ctx, auditFor(resource, actor, existing === null)),
      ...(kind === "lock" ? [locksChangedMutation(ctx)] : []),
    ],
  };
}

/**
 * Creates or overwrites resources together: every one is validated and
 * prepared first, then all are written in one compare-and-swap, or none is
 * (a command such as `tctl bots add` never leaves a bot without its token).
 * Per resource the rules of {@linkcode putResource} apply.
 */
export async function putResources(
  ctx: ServerContext,
  incoming: CreatableResource[],
  mode: WriteMode,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<PutResult[]> {
  const seen = new Set<string>();
  incoming.forEach((r, i) => {
    const id = `${r.kind}/${r.metadata.name}`;
    if (seen.has(id)) {
      throw new BadParameterError(`resources[${i}]: ${id} appears twice`, {
        details: { path: `resources[${i}]` },
      });
    }
    seen.add(id);
  });
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
    const plans: WritePlan[] = [];
    for (const [i, r] of incoming.entries()) {
      try {
        plans.push(await planWrite(ctx, r, mode, actor, generateSecret));
      } catch (err) {
        // Which item was refused, for a client that sent a file's worth (tctl
        // create -f names the document and item from it); same code and words.
        if (!(err instanceof KeyboundError) || incoming.length === 1) throw err;
        const inner = err.details?.path;
        const path = `resources[${i}]${typeof inner === "string" ? `.${inner}` : ""}`;
        throw new KeyboundError(err.code, err.message, {
          cause: err,
          details: { ...err.details, path },
        });
      }
    }
    const r = await ctx.backend.commit({
      checks: plans.map((p) => p.check),
      mutations: plans.flatMap((p) => p.mutations),
    });
    if (!r.ok) continue;
    const results: PutResult[] = [];
    for (const p of plans) {
      const stored = liveEntry(ctx, p.kind, await ctx.backend.get<unknown>(p.key));
      if (!stored) throw conflict(p.kind, p.name);
      results.push({ stored, created: p.created });
    }
    return results;
  }
  const first = incoming[0];
  throw conflict(first.kind, first.metadata.name);
}

/**
 * Creates or overwrites a resource. With `mode: "create"` an existing live
 * resource is `ALREADY_EXISTS`. With `upsert`, a `metadata.revision` that no
 * longer matches the stored version is `CONFLICT` (the file was read before
 * someone else changed or deleted the resource); omit the revision to
 * overwrite (or re-create) anyway.
 * Tokens keep their stored status unless one is sent, and get a registration
 * secret per Teleport's rules; bots get their status; locks their creator.
 */
export async function putResource(
  ctx: ServerContext,
  incoming: CreatableResource,
  mode: WriteMode,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<PutResult> {
  return (await putResources(ctx, [incoming], mode, actor, generateSecret))[0];
}

/** Deletes a resource (bot instances included); `NOT_FOUND` if it does not exist. */
export async function deleteResource(
  ctx: ServerContext,
  kind: Kind,
  name: string,
  actor: Actor,
): Promise<void> {
  const key = resourceKey(kind, ...nameParts(kind, name));
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
    const entry = await ctx.backend.get<unknown>(key);
    if (!liveEntry(ctx, kind, entry) || !entry) {
      throw new NotFoundError(`${kind} "${name}" not found`);
    }
    const r = await ctx.backend.commit({
      checks: [{ key, version: entry.version }],
      mutations: [
        { type: "delete", key },
        ...auditMutations(ctx, {
          type: "resource.deleted",
          status: { success: true },
          ...(actor.remoteAddr ? { connection: { remote_addr: actor.remoteAddr } } : {}),
          kind,
          name,
          user: actor.user,
        }),
        ...(kind === "lock" ? [locksChangedMutation(ctx)] : []),
      ],
    });
    if (r.ok) return;
  }
  throw conflict(kind, name);
}

/**
 * Requests a bound-keypair rotation at the token's next join
 * (`tctl bound-keypair rotate`): sets `spec.bound_keypair.rotate_after` to now.
 */
export async function requestTokenRotation(
  ctx: ServerContext,
  name: string,
): Promise<StoredResource<Token>> {
  const key = resourceKey("token", ...nameParts("token", name));
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
    const entry = await ctx.backend.get<unknown>(key);
    const existing = liveEntry(ctx, "token", entry);
    if (!existing || !entry) throw new NotFoundError(`token "${name}" not found`);
    const token = existing.resource;
    const updated: Token = {
      ...token,
      spec: {
        ...token.spec,
        bound_keypair: { ...token.spec.bound_keypair, rotate_after: ctx.now().toISOString() },
      },
    };
    const r = await ctx.backend.commit({
      checks: [{ key, version: entry.version }],
      mutations: [{
        type: "set",
        key,
        value: updated as unknown as JsonValue,
        ...(token.metadata.expires ? { expiresAt: Date.parse(token.metadata.expires) } : {}),
      }],
    });
    if (!r.ok) continue;
    const stored = liveEntry(ctx, "token", await ctx.backend.get<unknown>(key));
    if (!stored) throw conflict("token", name);
    return stored;
  }
  throw conflict("token", name);
}
