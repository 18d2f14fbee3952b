/**
 * Audit events, stored in the backend. Events are returned as mutations so a
 * join can write them in the same atomic commit as its state change.
 *
 * Every event is stored twice: under `["audit", time, id]` for the full log
 * and under `["audit_type", type, time, id]` so a listing by type reads only
 * events of that type. Listings are pages by key range (newest first, with a
 * cursor), so they never read more rows than they return.
 *
 * Failed joins are unauthenticated, so they are counted, not stored one by
 * one: see {@linkcode joinFailureCommit}.
 *
 * @module
 */
import { MAX_LIST_PAGE } from "../protocol/admin.ts";
import { BadParameterError } from "../errors.ts";
import { randomHex, sha256 } from "../crypto/random.ts";
import type { Check, JsonValue, Key, Mutation } from "../storage/backend.ts";
import { toHex } from "../util/encoding.ts";
import {
  AUDIT_PREFIX,
  auditKey,
  auditTypeKey,
  auditTypePrefix,
  joinFailureSourceKey,
} from "./keys.ts";
import type { ServerContext } from "./context.ts";
import { AuditEvent, type AuditEventInput, AuditEventType } from "../protocol/audit.ts";
import { sourceAddress } from "./rate_limit/source.ts";

export type { AuditEvent };

/** Audit event types Keybound emits. */
export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = AuditEventType.options;
export type { AuditEventType };

/** True if `t` names an audit event type. */
export function isAuditEventType(t: string): t is AuditEventType {
  return (AUDIT_EVENT_TYPES as readonly string[]).includes(t);
}

/** Input to {@linkcode auditMutations}: an event without id and time. */
export type AuditInput = AuditEventInput;

/** Retention of audit events in the backend. */
export const AUDIT_RETENTION_MS = 30 * 24 * 3600 * 1000;

function storeEvent(key: Key, event: AuditEvent, expiresAt: number): Mutation[] {
  const value = event as unknown as JsonValue;
  const [, time, id] = key;
  return [
    { type: "set", key, value, expiresAt },
    { type: "set", key: auditTypeKey(event.type, time, id), value, expiresAt },
  ];
}

/** The mutations that store `event`, for inclusion in an atomic commit. */
export function auditMutations(ctx: ServerContext, event: AuditInput): Mutation[] {
  return auditMutationsAt(ctx.now(), event);
}

/** The mutations that store `event` as emitted at `time` (kept for the retention from then). */
export function auditMutationsAt(time: Date, event: AuditInput): Mutation[] {
  const id = randomHex(8);
  const stored = { ...event, id, time: time.toISOString() } as AuditEvent;
  return storeEvent(auditKey(time, id), stored, time.getTime() + AUDIT_RETENTION_MS);
}

/** Stores `event` on its own (for failures, where there is no state change to join). */
export async function emitAudit(ctx: ServerContext, event: AuditInput): Promise<void> {
  const r = await ctx.backend.commit({ checks: [], mutations: auditMutations(ctx, event) });
  if (!r.ok) ctx.log.warn("audit event not stored", { type: event.type });
}

/**
 * Distinct failed-join rows one source address may open per minute; further
 * (token name, reason) pairs from it that minute are counted in one overflow
 * row, so varying the token name does not grow storage either.
 */
export const JOIN_FAILURE_ROWS_PER_SOURCE_MINUTE = 16;

const MINUTE_MS = 60_000;

/** What a failed join is aggregated by, besides the minute. */
export interface JoinFailure {
  /** Token name the client sent (attacker-controlled). */
  tokenName: string;
  /** Stable error code. */
  code: string;
  /** Error message of the first occurrence. */
  message: string;
  /** Peer address, when known. */
  remoteAddr?: string;
}

interface AggregateRow extends AuditEvent {
  count: number;
  /** Failures the latest update added (one commit may count a batch). */
  last_added: number;
  last_time: string;
}

async function hashId(parts: string[]): Promise<string> {
  return "jf-" + toHex(await sha256(JSON.stringify(parts))).slice(0, 32);
}

/** Adds `count` failures to a stored aggregate row, or starts one. */
function bumped(
  existing: AggregateRow | undefined,
  fresh: () => AggregateRow,
  count: number,
  now: Date,
): AggregateRow {
  if (!existing) return { ...fresh(), count, last_added: count };
  return {
    ...existing,
    count: existing.count + count,
    last_added: count,
    last_time: now.toISOString(),
  };
}

/**
 * The checks and mutations that count `failures` (all from one source, see
 * {@linkcode sourceAddress}): one row per token name, error code and source
 * per minute (`count`, `time` of the first and `last_time` of the latest),
 * created or updated under a compare-and-swap on its version. A source's
 * rows per minute are capped ({@linkcode JOIN_FAILURE_ROWS_PER_SOURCE_MINUTE})
 * by a per-source counter row checked in the same commit; failures past the
 * cap are counted in one overflow row. Commit the result together with any
 * other mutations; on a failed commit, build it again and retry.
 */
export async function joinFailureCommit(
  ctx: ServerContext,
  failures: JoinFailure[],
): Promise<{ checks: Check[]; mutations: Mutation[] }> {
  const now = ctx.now();
  const minuteMs = Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS;
  const minute = new Date(minuteMs);
  const source = sourceAddress(failures[0].remoteAddr);
  const expiresAt = minuteMs + AUDIT_RETENTION_MS;
  const checks: Check[] = [];
  const mutations: Mutation[] = [];
  const row = (id: string) => ctx.backend.get<AggregateRow>(auditKey(minute, id));
  const put = (id: string, version: string | null, value: AggregateRow) => {
    const key = auditKey(minute, id);
    checks.push({ key, version });
    mutations.push(...storeEvent(key, value, expiresAt));
  };
  // The first failure's peer address, as every event records it; the
  // aggregation source (IP without port, IPv6 /64) goes in `source`.
  const peer = (f: JoinFailure | null) => (f ?? failures[0]).remoteAddr;
  const fresh = (id: string, f: JoinFailure | null) => (): AggregateRow => ({
    type: "join.failed",
    id,
    time: now.toISOString(),
    last_time: now.toISOString(),
    count: 0,
    last_added: 0,
    status: { success: false, error: f ? f.message : "(several)" },
    ...(peer(f) ? { connection: { remote_addr: peer(f)! } } : {}),
    source,
    token_name: f ? f.tokenName : "",
    method: "bound_keypair",
    error: f ? f.code : "(several)",
    ...(f ? {} : { overflow: true }),
  });

  const groups = [...Map.groupBy(failures, (f) => JSON.stringify([f.tokenName, f.code])).values()];
  const ids = await Promise.all(groups.map((g) => hashId([source, g[0].tokenName, g[0].code])));
  const sourceKey = joinFailureSourceKey(minute.toISOString(), toHex(await sha256(source)));
  const [counter, ...existing] = await Promise.all([
    ctx.backend.get<{ rows: number }>(sourceKey),
    ...ids.map(row),
  ]);
  let rows = counter?.value.rows ?? 0;
  let overflow = 0;
  groups.forEach((g, i) => {
    const e = existing[i];
    if (e === null && rows >= JOIN_FAILURE_ROWS_PER_SOURCE_MINUTE) overflow += g.length;
    else {
      if (e === null) rows++;
      put(ids[i], e?.version ?? null, bumped(e?.value, fresh(ids[i], g[0]), g.length, now));
    }
  });
  if (rows !== (counter?.value.rows ?? 0)) {
    checks.push({ key: sourceKey, version: counter?.version ?? null });
    // Only needed while its minute lasts.
    mutations.push({
      type: "set",
      key: sourceKey,
      value: { rows },
      expiresAt: minuteMs + 2 * MINUTE_MS,
    });
  }
  if (overflow > 0) {
    const id = await hashId([source, "", "*"]);
    const e = await row(id);
    put(id, e?.version ?? null, bumped(e?.value, fresh(id, null), overflow, now));
  }
  return { checks, mutations };
}

/** Compare-and-swap attempts of one aggregated commit before it gives up. */
const JOIN_FAILURE_ATTEMPTS = 20;

interface QueuedFailure {
  failure: JoinFailure;
  mutations: () => Mutation[];
  done: (stored: boolean) => void;
}

// Failures waiting to be counted, per context and source address. While one
// commit for a source is in flight, its next failures queue here and are
// then counted together: a flood costs one commit per batch, not per request.
const queues = new WeakMap<ServerContext, Map<string, QueuedFailure[]>>();

async function commitCounted(ctx: ServerContext, batch: QueuedFailure[]): Promise<boolean> {
  for (let attempt = 1; attempt <= JOIN_FAILURE_ATTEMPTS; attempt++) {
    const counted = await joinFailureCommit(ctx, batch.map((q) => q.failure));
    const r = await ctx.backend.commit({
      checks: counted.checks,
      mutations: [...batch.flatMap((q) => q.mutations()), ...counted.mutations],
    });
    if (r.ok) return true;
    await new Promise((wake) => setTimeout(wake, Math.random() * attempt * 5));
  }
  return false;
}

async function drain(ctx: ServerContext, source: string, pending: Map<string, QueuedFailure[]>) {
  for (let batch = pending.get(source); batch?.length; batch = pending.get(source)) {
    pending.set(source, []);
    let stored = false;
    try {
      stored = await commitCounted(ctx, batch);
    } catch (err) {
      ctx.log.error("could not store join failures", { error: err as Error });
    }
    for (const q of batch) q.done(stored);
  }
  pending.delete(source);
}

/**
 * Commits `mutations` together with one more failed join counted into its
 * aggregate row ({@linkcode joinFailureCommit}), retrying when another
 * writer updated the row first. Failures from one source are counted in
 * batches, one commit at a time. Resolves false if it never got through.
 */
export function commitWithJoinFailure(
  ctx: ServerContext,
  failure: JoinFailure,
  mutations: () => Mutation[],
): Promise<boolean> {
  const source = sourceAddress(failure.remoteAddr);
  let pending = queues.get(ctx);
  if (!pending) queues.set(ctx, pending = new Map());
  return new Promise((done) => {
    const queue = pending.get(source);
    const item = { failure, mutations, done };
    if (queue) queue.push(item);
    else {
      pending.set(source, [item]);
      void drain(ctx, source, pending);
    }
  });
}

/** Largest page of {@linkcode listAudit} (the wire contract's). */
export const MAX_AUDIT_PAGE = MAX_LIST_PAGE;

/** Options of {@linkcode listAudit}. */
export interface AuditListOptions {
  /** Only events of this type. */
  type?: AuditEventType;
  /** Page size (default 100, at most {@linkcode MAX_AUDIT_PAGE}). */
  limit?: number;
  /** Cursor: the `next` of the previous page. */
  after?: string;
}

/** One page of events, newest first; `next` is present when more may follow. */
export interface AuditPage {
  /** Events. */
  items: AuditEvent[];
  /** Cursor of the following page. */
  next?: string;
}

// `<key time>/<id>`: both parts of an event's key below its prefix.
const CURSOR = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\/([A-Za-z0-9-]{1,64})$/;

/**
 * Lists one page of events, newest first, optionally of one type. Reads the
 * rows it returns and one more (from the type index when filtered), however
 * long the log.
 */
export async function listAudit(
  ctx: ServerContext,
  options: AuditListOptions = {},
): Promise<AuditPage> {
  const limit = Math.min(options.limit ?? 100, MAX_AUDIT_PAGE);
  const prefix = options.type ? auditTypePrefix(options.type) : AUDIT_PREFIX;
  let after: Key | undefined;
  if (options.after !== undefined) {
    const m = CURSOR.exec(options.after);
    if (!m) {
      throw new BadParameterError("after: not a cursor returned by an audit listing", {
        details: { path: "after" },
      });
    }
    after = [...prefix, m[1], m[2]];
  }
  // One row more than the page tells whether another page follows.
  const entries = await ctx.backend.list<unknown>(prefix, {
    reverse: true,
    limit: limit + 1,
    after,
  });
  const page = entries.slice(0, limit);
  const items: AuditEvent[] = [];
  for (const e of page) {
    const parsed = AuditEvent.safeParse(e.value);
    if (parsed.success) items.push(parsed.data);
    else ctx.log.warn("ignoring malformed stored audit event", { key: e.key.join("/") });
  }
  if (entries.length <= limit) return { items };
  const last = page[page.length - 1].key;
  return { items, next: `${last[last.length - 2]}/${last[last.length - 1]}` };
}
