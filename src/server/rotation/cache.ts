/**
 * The CAs an auth instance holds in memory, and how they stay current when a
 * rotation (on this or another instance sharing the backend) changes them.
 *
 * Every CA write also writes {@linkcode CA_REVISION_KEY}. An instance re-reads
 * that one key every {@linkcode CA_MAX_STALENESS_MS} (the CA watcher,
 * ./watch.ts) and before signing anything outside a join, and reloads its
 * CAs when its version moved. A join commit additionally requires the version the signing
 * snapshot was read at, so an instance that has not yet seen a phase change
 * cannot commit a join signed by a key that change dropped: its commit fails,
 * it reloads and signs again (src/server/join/finish.ts).
 *
 * @module
 */
import type { Backend } from "../../storage/backend.ts";
import type { CaSet, CaType, CertAuthority, ServerContext } from "../context.ts";
import { CA_PREFIX, CA_REVISION_KEY } from "../keys.ts";
import { corruptCa, loadCa } from "./material.ts";
import { CA_TYPES, parseStoredCa } from "./schema.ts";

/** How often the CA watcher re-checks: the longest an instance verifies with stale CA state. */
export const CA_MAX_STALENESS_MS = 1000;

/** The field of {@linkcode CaSet} holding each CA type. */
export const CA_SET_FIELD = {
  user: "user",
  host: "host",
  bound_keypair: "boundKeypair",
  jwt: "jwt",
  spiffe: "spiffe",
} as const satisfies Record<CaType, keyof CaSet>;

/** The CA of `type` in `ctx`'s current snapshot. */
export function caOf(ctx: ServerContext, type: CaType): CertAuthority {
  return ctx.cas[CA_SET_FIELD[type]];
}

/**
 * Reads every CA record (one listing) and the revision before it, reusing
 * the loaded CAs of `previous` whose record did not change. Types without a
 * record are returned in `missing`.
 */
export async function readCaSet(
  backend: Backend,
  previous?: CaSet,
): Promise<{ cas: Partial<CaSet> & { revision: string | null }; missing: CaType[] }> {
  // The revision first: records read after it are at least as new, so a
  // snapshot never claims a revision newer than its keys.
  const revision = (await backend.get(CA_REVISION_KEY))?.version ?? null;
  const entries = await backend.list(CA_PREFIX);
  const cas: Partial<CaSet> & { revision: string | null } = { revision };
  const missing: CaType[] = [];
  for (const type of CA_TYPES) {
    const entry = entries.find((e) => e.key.length === 3 && e.key[2] === type);
    if (!entry) {
      missing.push(type);
      continue;
    }
    const field = CA_SET_FIELD[type];
    const old = previous?.[field];
    if (old && old.version === entry.version) {
      cas[field] = old;
      continue;
    }
    const parsed = parseStoredCa(entry.value);
    if (!parsed.success) throw corruptCa(`${type} certificate authority`, parsed.error);
    cas[field] = await loadCa(type, parsed.data, entry.version);
  }
  return { cas, missing };
}

interface Freshness {
  checkedAt: number;
  /** The check whose revision read has been issued, if any. */
  running: Promise<void> | null;
  /** The check that starts when `running` settles: it reads after every call that joined it. */
  queued: Promise<void> | null;
}

const freshness = new WeakMap<ServerContext, Freshness>();

async function check(ctx: ServerContext, f: Freshness): Promise<void> {
  const started = performance.now();
  const revision = (await ctx.backend.get(CA_REVISION_KEY))?.version ?? null;
  if (revision !== ctx.cas.revision) {
    const { cas, missing } = await readCaSet(ctx.backend, ctx.cas);
    if (missing.length > 0) throw corruptCa(`${missing[0]} certificate authority (missing)`);
    const before = ctx.cas;
    ctx.cas = cas as CaSet;
    for (const type of CA_TYPES) {
      const field = CA_SET_FIELD[type];
      if (before[field].version !== ctx.cas[field].version) {
        ctx.log.info("certificate authority changed", {
          type,
          phase: ctx.cas[field].rotation.phase,
        });
      }
    }
  }
  f.checkedAt = started;
}

/**
 * Makes `ctx.cas` at most `maxAgeMs` old: re-reads the revision record when
 * the last check is older, and reloads the CAs when it moved. `0` asks for a
 * check that reads the revision after this call (before signing outside a
 * join, after a rotation): a key dropped before the call is never used after
 * it resolves.
 *
 * Checks are serialized per context, so the snapshot only ever moves forward,
 * and single-flight: while one check runs, every `0` call joins the one check
 * queued behind it (which has not read yet), so N concurrent signing requests
 * cost at most two revision reads, not N in a row.
 */
export function refreshCas(
  ctx: ServerContext,
  maxAgeMs: number = CA_MAX_STALENESS_MS,
): Promise<void> {
  let f = freshness.get(ctx);
  if (!f) {
    f = { checkedAt: performance.now(), running: null, queued: null };
    freshness.set(ctx, f);
  }
  if (maxAgeMs > 0) {
    if (performance.now() - f.checkedAt < maxAgeMs) return Promise.resolve();
    // Any check reads after the last one that satisfied this age; join it.
    const pending = f.queued ?? f.running;
    if (pending) return pending;
  }
  if (f.queued) return f.queued;
  const state = f;
  const start = (): Promise<void> => {
    state.queued = null;
    const run = check(ctx, state);
    state.running = run;
    const done = (): void => {
      if (state.running === run) state.running = null;
    };
    run.then(done, done);
    return run;
  };
  if (!state.running) return start();
  const queued = state.running.then(start, start);
  state.queued = queued;
  return queued;
}
