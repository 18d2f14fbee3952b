/**
 * The auth service's Prometheus metrics, per process, served on the
 * diagnostics listener only (`/metrics`). Join outcomes, recoveries and
 * locks are counted from the audit events each commit of this process
 * stores, so the numbers are those of what was actually committed and no
 * join code needs to know about metrics; backend latency, conflicts and
 * errors come from a thin wrapper around the {@linkcode Backend}; request
 * latency from a wrapper around the application's `fetch`.
 *
 * @module
 */
import { exponentialBuckets, Metric } from "../util/prometheus.ts";
import { isKeyboundError } from "../errors.ts";
import type {
  AtomicOperation,
  Backend,
  CommitResult,
  Entry,
  JsonValue,
  Key,
  ListOptions,
} from "../storage/backend.ts";
import { listInPages } from "../storage/backend.ts";
import type { CaSet, ServerContext } from "./context.ts";
import { CA_SET_FIELD } from "./rotation/cache.ts";
import { trustedKeySets } from "./rotation/status.ts";
import { CA_TYPES, ROTATION_PHASES } from "../protocol/ca_rotation.ts";
import { AUDIT_PREFIX, resourcePrefix } from "./keys.ts";

const SECONDS = exponentialBuckets(0.001, 2, 15); // 1 ms … ~16 s
/** Bot instances are counted at most this often (a listing of every instance). */
const INSTANCE_COUNT_TTL_MS = 15_000;

/**
 * What the public front (the runtime adapter that terminates TLS and reads
 * PROXY headers) reports, one event per connection it refuses or closes on
 * its own: the adapter only names the event; the metric names and labels
 * are here.
 */
export const FRONT_EVENTS = {
  /** Closed before TLS: its source (the PROXY-declared client behind a balancer) holds its cap. */
  refused_per_source: ["refused", "per_source"],
  /** Closed before TLS: its source (as for `per_source`) opens connections faster than its rate. */
  refused_source_rate: ["refused", "source_rate"],
  /** Closed at the accept: a balancer's connections waiting for their PROXY header are at their cap. */
  refused_awaiting_header: ["refused", "awaiting_header"],
  /** The oldest connection of the source holding the most, closed for a newcomer at the total cap. */
  evicted_total: ["evicted", "total"],
  /** The same, among connections in setup, at the cap on connections in setup. */
  evicted_setup: ["evicted", "setup"],
  /** No finished PROXY header and TLS handshake within the setup limit. */
  setup_timeout: ["cut", "setup_timeout"],
  /** No byte either way for the idle limit. */
  idle_timeout: ["cut", "idle_timeout"],
  /** A request (header section and body) not whole within the request deadline. */
  request_deadline: ["cut", "request_deadline"],
  /** An answer not taken by the client (handed wholly to its socket) within the answer deadline. */
  answer_deadline: ["cut", "answer_deadline"],
  /**
   * A connection its client reset while it waited in the listen queue: the
   * accept fails for it (Deno 2.9.6: NotConnected), and the front takes the
   * next at once. The client's doing, not a shortage.
   */
  reset_at_accept: ["lost", "reset_at_accept"],
  /** An accept failed (out of descriptors, most likely). */
  accept_failed: ["accept_failed", ""],
} as const;

/** One of {@linkcode FRONT_EVENTS}. */
export type FrontEvent = keyof typeof FRONT_EVENTS;

interface AuditLike {
  type?: string;
  status?: { success?: boolean };
  error?: string;
  recovery_count?: number;
  /** Failures an aggregated `join.failed` row gained in this commit (src/server/audit.ts). */
  last_added?: number;
}

/** Join kind from the events one commit stored together. */
function joinKind(events: AuditLike[]): string {
  const recovery = events.find((e) => e.type === "join_token.bound_keypair.recovery");
  if (!recovery) return events.some((e) => e.type === "bot.join") ? "refresh" : "unknown";
  return recovery.recovery_count === 1 ? "onboarding" : "recovery";
}

/** Every metric of one auth process. */
export class AuthMetrics {
  /** Joins by kind and outcome code (`OK` on success). */
  readonly joins = new Metric(
    "keybound_auth_joins_total",
    "Bound-keypair joins finished by this process, by kind and outcome code.",
    "counter",
  );
  /** Join request latency by step. */
  readonly joinLatency = new Metric(
    "keybound_auth_join_request_duration_seconds",
    "Latency of join requests (begin, continue, resume) served by this process.",
    "histogram",
    SECONDS,
  );
  /** Recoveries. */
  readonly recoveries = new Metric(
    "keybound_auth_recoveries_total",
    "Recoveries (including first onboardings) committed by this process.",
    "counter",
  );
  /** Locks created. */
  readonly locks = new Metric(
    "keybound_auth_locks_created_total",
    "Locks created through this process (by the join server or an admin).",
    "counter",
  );
  /** Bot instances in the cluster. */
  readonly botInstances = new Metric(
    "keybound_auth_bot_instances",
    "Bot instances stored in the cluster (counted at most every 15 s).",
    "gauge",
  );
  /** Commit latency. */
  readonly commitLatency = new Metric(
    "keybound_auth_backend_commit_duration_seconds",
    "Latency of storage commits, by result (ok, conflict, error).",
    "histogram",
    SECONDS,
  );
  /** Commits whose checks failed. */
  readonly conflicts = new Metric(
    "keybound_auth_backend_commit_conflicts_total",
    "Storage commits refused because a checked version had changed.",
    "counter",
  );
  /** Storage errors. */
  readonly backendErrors = new Metric(
    "keybound_auth_backend_errors_total",
    "Storage operations that failed, by error code.",
    "counter",
  );
  /** Rotation phase of each CA. */
  readonly caPhase = new Metric(
    "keybound_auth_ca_rotation_phase",
    "1 for each CA's current rotation phase, 0 for the others (as this instance sees it).",
    "gauge",
  );
  /** Trusted keys of each CA. */
  readonly caTrustedKeys = new Metric(
    "keybound_auth_ca_trusted_keys",
    "Keys each CA trusts now: 1 in standby, 2 during a rotation.",
    "gauge",
  );
  /** Trusted Ed25519 X.509 keys of the user CA (join certificates of Ed25519 bots). */
  readonly caTrustedEd25519Keys = new Metric(
    "keybound_auth_ca_trusted_ed25519_x509_keys",
    "Ed25519 X.509 keys the user CA trusts now (they sign the join certificates of Ed25519 " +
      "bots): 0 before the first user CA rotation of a cluster created by an older version.",
    "gauge",
  );
  /** Connections the public front refused, by reason. */
  readonly frontRefused = new Metric(
    "keybound_auth_front_connections_refused_total",
    "Connections the public front closed before TLS, by reason (per_source: the source's cap " +
      "of established connections; source_rate: the source's rate of new connections; " +
      "awaiting_header: a balancer's connections waiting for their PROXY header at their cap).",
    "counter",
  );
  /** Connections the public front closed to make room for a newcomer. */
  readonly frontEvicted = new Metric(
    "keybound_auth_front_connections_evicted_total",
    "Connections of the source holding the most that the public front closed for a newcomer, " +
      "by cap (total: all connections; setup: connections in setup).",
    "counter",
  );
  /** Connections the public front cut for a limit of time. */
  readonly frontCut = new Metric(
    "keybound_auth_front_connections_cut_total",
    "Connections the public front closed for a time limit, by reason (setup_timeout, " +
      "idle_timeout, request_deadline, answer_deadline).",
    "counter",
  );
  /** Connections lost before the public front could take them. */
  readonly frontLost = new Metric(
    "keybound_auth_front_connections_lost_total",
    "Connections lost before the public front could serve them, by reason (reset_at_accept: " +
      "the client reset it while it waited in the listen queue; not a descriptor shortage).",
    "counter",
  );
  /** Failed accepts. */
  readonly frontAcceptFailures = new Metric(
    "keybound_auth_front_accept_failures_total",
    "Accepts of the public listener that failed (out of descriptors, most likely).",
    "counter",
  );
  #instancesCountedAt = -Infinity;

  constructor() {
    // Every series from the start at 0, so a rate() sees the first event.
    for (const event of Object.keys(FRONT_EVENTS) as FrontEvent[]) this.front(event, 0);
  }

  /** Counts an event the public front reported (`by` 0 only creates the series). */
  front(event: FrontEvent, by = 1): void {
    const [family, reason] = FRONT_EVENTS[event];
    if (family === "accept_failed") this.frontAcceptFailures.inc({}, by);
    else {
      const metric = family === "refused"
        ? this.frontRefused
        : family === "evicted"
        ? this.frontEvicted
        : family === "lost"
        ? this.frontLost
        : this.frontCut;
      metric.inc({ reason }, by);
    }
  }

  /** `backend` with its commits and failures measured. */
  meter(backend: Backend): Backend {
    const error = (err: unknown) => {
      this.backendErrors.inc({ code: isKeyboundError(err) ? err.code : "UNKNOWN" });
      return err;
    };
    return {
      get: <T = JsonValue>(key: Key): Promise<Entry<T> | null> =>
        backend.get<T>(key).catch((e) => Promise.reject(error(e))),
      list: <T = JsonValue>(prefix: Key, o?: ListOptions): Promise<Entry<T>[]> =>
        backend.list<T>(prefix, o).catch((e) => Promise.reject(error(e))),
      commit: async (op: AtomicOperation): Promise<CommitResult> => {
        const start = performance.now();
        let result = "error";
        try {
          const r = await backend.commit(op);
          result = r.ok ? "ok" : "conflict";
          if (r.ok) this.#countEvents(op);
          else this.conflicts.inc();
          return r;
        } catch (err) {
          throw error(err);
        } finally {
          this.commitLatency.observe({ result }, (performance.now() - start) / 1000);
        }
      },
      close: () => backend.close(),
    };
  }

  #countEvents(op: AtomicOperation): void {
    const events: AuditLike[] = [];
    for (const m of op.mutations) {
      if (m.type !== "set" || m.key[0] !== AUDIT_PREFIX[0]) continue;
      if (typeof m.value === "object" && m.value !== null) events.push(m.value as AuditLike);
    }
    if (events.length === 0) return;
    const kind = joinKind(events);
    for (const e of events) {
      if (e.type === "bot.join" && e.status?.success) this.joins.inc({ kind, outcome: "OK" });
      if (e.type === "join.failed") {
        this.joins.inc({ kind, outcome: e.error ?? "UNKNOWN" }, e.last_added ?? 1);
      }
      if (e.type === "join_token.bound_keypair.recovery" && e.status?.success) {
        this.recoveries.inc();
      }
      if (e.type === "lock.created") this.locks.inc();
    }
  }

  /** Wraps an application's `fetch` to time join requests. */
  timeRequests<E>(
    fetch: (req: Request, env: E) => Response | Promise<Response>,
  ): (req: Request, env: E) => Promise<Response> {
    return async (req, env) => {
      const step = /\/v1\/join\/bound-keypair\/(begin|continue|resume)$/.exec(
        new URL(req.url).pathname,
      )?.[1];
      if (!step) return await fetch(req, env);
      const start = performance.now();
      try {
        return await fetch(req, env);
      } finally {
        this.joinLatency.observe({ step }, (performance.now() - start) / 1000);
      }
    };
  }

  async #countInstances(ctx: ServerContext): Promise<void> {
    if (performance.now() - this.#instancesCountedAt < INSTANCE_COUNT_TTL_MS) return;
    let n = 0;
    for await (const _ of listInPages(ctx.backend, resourcePrefix("bot_instance"))) n++;
    this.botInstances.set({}, n);
    this.#instancesCountedAt = performance.now();
  }

  /**
   * CA expiry, built afresh on each scrape: the user CA's Ed25519 X.509
   * certificate has a row (`key="ed25519"`) exactly while the key exists, and
   * a series, once set, cannot be removed from a family. `notAfter` was read
   * when the key was loaded: parsing the certificates took about 1 ms each,
   * nearly all of a scrape.
   */
  #caExpiry(cas: CaSet): Metric {
    const m = new Metric(
      "keybound_auth_ca_expiry_timestamp_seconds",
      'NotAfter of each X.509 certificate authority, Unix seconds (key="ed25519": the user ' +
        "CA's Ed25519 X.509 certificate, while it has one).",
      "gauge",
    );
    for (const type of ["user", "host", "spiffe"] as const) {
      const key = cas[type].tls;
      if (key) m.set({ ca: type }, key.notAfter.getTime() / 1000);
    }
    // The signing set's; the other set's while only that one has the key (the first user CA
    // rotation of a cluster created before the key).
    const ed = cas.user.tlsEd25519 ?? cas.user.trustedTlsEd25519[0];
    if (ed) m.set({ ca: "user", key: "ed25519" }, ed.notAfter.getTime() / 1000);
    return m;
  }

  /** The exposition text (format 0.0.4). */
  async render(ctx: ServerContext): Promise<string> {
    // Every CA row from one snapshot, rendered before the await below (a rotation may
    // replace ctx.cas meanwhile, another scrape set these families again).
    const cas = ctx.cas;
    for (const type of CA_TYPES) {
      const ca = cas[CA_SET_FIELD[type]];
      for (const phase of ROTATION_PHASES) {
        this.caPhase.set({ ca: type, phase }, ca.rotation.phase === phase ? 1 : 0);
      }
      this.caTrustedKeys.set({ ca: type }, trustedKeySets(ca));
    }
    this.caTrustedEd25519Keys.set({ ca: "user" }, cas.user.trustedTlsEd25519.length);
    const text = (ms: Metric[]) => ms.map((m) => m.render()).join("");
    const caRows = text([
      this.#caExpiry(cas),
      this.caPhase,
      this.caTrustedKeys,
      this.caTrustedEd25519Keys,
    ]);
    // A scrape while the backend is down still answers, with the last count.
    await this.#countInstances(ctx).catch(() => {});
    return text([
      this.joins,
      this.joinLatency,
      this.recoveries,
      this.locks,
      this.botInstances,
      this.commitLatency,
      this.conflicts,
      this.backendErrors,
    ]) + caRows + text([
      this.frontRefused,
      this.frontEvicted,
      this.frontCut,
      this.frontLost,
      this.frontAcceptFailures,
    ]);
  }
}
