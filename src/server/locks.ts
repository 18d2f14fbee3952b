/**
 * Locks as the server uses them: finding a lock in force for a subject, and
 * building the mutations that create one (the lock resource plus its
 * `lock.created` audit event) so a caller can commit them together with its
 * own audit events.
 *
 * Every request that presents a certificate and every join checks locks, so
 * the parsed lock set is kept per backend and reused while the
 * {@linkcode LOCKS_CHANGED_KEY} marker keeps its version: a check costs one
 * point read, not a listing and parse of every lock. Each lock write commits
 * {@linkcode locksChangedMutation} with it, so any process sharing the
 * backend sees the change on its next check. Expiry is judged at check time,
 * never at load time.
 *
 * @module
 */
import { BadParameterError, KeyboundError } from "../errors.ts";
import { ADMIN_USERNAME } from "../protocol/subject.ts";
import { randomHex, randomUuid } from "../crypto/random.ts";
import { type Backend, type JsonValue, listInPages, type Mutation } from "../storage/backend.ts";
import { Lock } from "../resources/schemas.ts";
import { auditMutations } from "./audit.ts";
import type { ServerContext } from "./context.ts";
import { LOCKS_CHANGED_KEY, resourceKey, resourcePrefix } from "./keys.ts";

/** What a lock can target; a lock matches a subject if every field it sets is equal. */
export interface LockSubject {
  /** Join token name. */
  join_token?: string;
  /** Bot instance id. */
  bot_instance_id?: string;
  /** User name (`bot-<name>`). */
  user?: string;
}

/** Who creates the locks the join server raises on its own. */
export const SYSTEM_LOCK_CREATOR = "system";

/** True if `lock` has not expired at `now` (by `spec.expires` or `metadata.expires`). */
export function lockInForce(lock: Lock, now: Date): boolean {
  for (const e of [lock.spec.expires, lock.metadata.expires]) {
    if (e !== undefined && Date.parse(e) <= now.getTime()) return false;
  }
  return true;
}

/**
 * Refuses a lock that would match the admin identity: it would refuse every
 * tctl command, `tctl rm lock/…` included, with no way back through the API
 * (docs/security.md, "Admin recovery").
 */
export function assertLockAllowed(lock: Lock): void {
  if (lockMatches(lock, { user: ADMIN_USERNAME })) {
    throw new BadParameterError(
      `spec.target.user: a lock may not target the admin identity ("${ADMIN_USERNAME}"); ` +
        "it would lock out every tctl command, including the one that removes the lock",
      { details: { path: "spec.target.user" } },
    );
  }
}

/** True if every target field the lock sets equals the subject's. */
export function lockMatches(lock: Lock, subject: LockSubject): boolean {
  const t = lock.spec.target;
  const fields = ["join_token", "bot_instance_id", "user"] as const;
  const set = fields.filter((f) => t[f] !== undefined);
  return set.length > 0 && set.every((f) => t[f] === subject[f]);
}

/**
 * The mutation that every write of a lock (create, overwrite, delete) must
 * commit together with it, so cached lock sets are reloaded.
 */
export function locksChangedMutation(ctx: ServerContext): Mutation {
  return {
    type: "set",
    key: LOCKS_CHANGED_KEY,
    value: { at: ctx.now().toISOString(), id: randomHex(8) },
  };
}

/** The parsed locks of a backend as of one version of the marker. */
export interface LockSnapshot {
  /** Version of {@linkcode LOCKS_CHANGED_KEY} read before the listing; null if absent. */
  version: string | null;
  /** Every well-formed stored lock, expired ones included. */
  locks: Lock[];
}

const snapshots = new WeakMap<Backend, LockSnapshot>();

/**
 * Every stored lock, expired ones included. The marker is read before the
 * listing, so a snapshot is never older than the marker version it is filed
 * under; a write racing the listing only makes it newer.
 */
export async function storedLocks(ctx: ServerContext): Promise<Lock[]> {
  return (await lockSnapshot(ctx)).locks;
}

/**
 * {@linkcode storedLocks} with the marker version they are current for: a
 * commit derived from the locks that checks this version is refused if any
 * lock was written since (the join's commit, docs/security.md "Locks").
 */
export async function lockSnapshot(ctx: ServerContext): Promise<LockSnapshot> {
  const marker = await ctx.backend.get(LOCKS_CHANGED_KEY);
  const version = marker?.version ?? null;
  const cached = snapshots.get(ctx.backend);
  if (cached && cached.version === version) return cached;
  const locks: Lock[] = [];
  for await (const entry of listInPages(ctx.backend, resourcePrefix("lock"))) {
    const parsed = Lock.safeParse(entry.value);
    if (parsed.success) locks.push(parsed.data);
    else ctx.log.warn("ignoring malformed stored lock", { key: entry.key.join("/") });
  }
  const snapshot = { version, locks };
  snapshots.set(ctx.backend, snapshot);
  return snapshot;
}

/**
 * The first lock in force at `now` that matches `subject`, or null. `stored`
 * is a {@linkcode storedLocks} read the caller began earlier (so its marker
 * read joins the caller's other reads); by default one is read now.
 */
export async function findLockInForce(
  ctx: ServerContext,
  subject: LockSubject,
  now: Date = ctx.now(),
  stored: Promise<Lock[]> = storedLocks(ctx),
): Promise<Lock | null> {
  for (const lock of await stored) {
    if (lockInForce(lock, now) && lockMatches(lock, subject)) return lock;
  }
  return null;
}

/** The `LOCKED` error for a lock in force. */
export function lockedError(lock: Lock): KeyboundError {
  const t = lock.spec.target;
  const what = t.join_token !== undefined
    ? `join token "${t.join_token}"`
    : t.bot_instance_id !== undefined
    ? `bot instance "${t.bot_instance_id}"`
    : `user "${t.user}"`;
  const why = lock.spec.message ? `: ${lock.spec.message}` : "";
  return new KeyboundError("LOCKED", `a lock targeting ${what} is in force${why}`);
}

/** Lock message after a failed join-state verification (Teleport's wording). */
export function joinStateLockMessage(tokenName: string, botName: string): string {
  return `The join token "${tokenName}" has been locked by bot "${botName}" after a client ` +
    "failed to verify its join state, possibly indicating a stolen keypair.";
}

/** Lock message after a generation-counter mismatch (Teleport's wording). */
export function generationLockMessage(
  tokenName: string,
  botName: string,
  instanceId: string,
): string {
  return `Bot joins via the token "${tokenName}" have been locked due to a certificate ` +
    `generation mismatch by ${botName}/${instanceId}, possibly indicating a stolen certificate.`;
}

/** Inputs of {@linkcode createLockMutations}. */
export interface NewLock {
  /** Target. */
  target: LockSubject;
  /** Human-readable reason. */
  message: string;
  /** Creator recorded on the lock and its event. */
  createdBy?: string;
  /** Expiry; none means the lock stays until deleted. */
  expires?: Date;
  /** Peer address of the request that caused it, for the audit event. */
  remoteAddr?: string;
}

/**
 * A new lock (random UUID name) and the mutations that store it with its
 * `lock.created` event and the lock-change marker.
 */
export function createLockMutations(
  ctx: ServerContext,
  o: NewLock,
): { lock: Lock; mutations: Mutation[] } {
  const now = ctx.now();
  const createdBy = o.createdBy ?? SYSTEM_LOCK_CREATOR;
  const lock: Lock = {
    kind: "lock",
    version: "v2",
    metadata: { name: randomUuid() },
    spec: {
      target: { ...o.target },
      message: o.message,
      created_at: now.toISOString(),
      created_by: createdBy,
      ...(o.expires ? { expires: o.expires.toISOString() } : {}),
    },
  };
  const mutations: Mutation[] = [
    {
      type: "set",
      key: resourceKey("lock", lock.metadata.name),
      value: lock as unknown as JsonValue,
    },
    locksChangedMutation(ctx),
    ...auditMutations(ctx, {
      type: "lock.created",
      status: { success: true },
      ...(o.remoteAddr ? { connection: { remote_addr: o.remoteAddr } } : {}),
      lock_name: lock.metadata.name,
      target: lock.spec.target as JsonValue,
      message: o.message,
      created_by: createdBy,
    }),
  ];
  return { lock, mutations };
}
