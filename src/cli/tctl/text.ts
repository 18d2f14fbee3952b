/**
 * Human-readable renderings of resources and audit events for tctl's text
 * output: one table per kind and a detailed view of a bot instance.
 *
 * @module
 */
import { botUserName } from "../../protocol/subject.ts";
import type { AuditEvent } from "../../protocol/audit.ts";
import type {
  Bot,
  BotInstance,
  Kind,
  Lock,
  Role,
  Token,
  WorkloadIdentity,
} from "../../resources/schemas.ts";
import type { AnyResource } from "../../resources/validate.ts";
import { escapeLogText } from "../../util/log.ts";
import { formatFields, formatTable } from "./table.ts";

type Authentication = NonNullable<BotInstance["status"]["initial_authentication"]>;
type Heartbeat = BotInstance["status"]["latest_heartbeats"][number];

/** Bots: name, backing user, roles. */
export function botsTable(bots: Bot[]): string {
  return formatTable(
    ["Bot", "User", "Roles"],
    bots.map((b) => [
      b.metadata.name,
      b.status?.user_name ?? botUserName(b.metadata.name),
      b.spec.roles.join(",") || "(none)",
    ]),
  );
}

/** `1/3 standard`, or `2 relaxed` where the limit does not apply. */
export function recoverySummary(token: Token): string {
  const { limit, mode } = token.spec.bound_keypair.recovery;
  const count = token.status?.bound_keypair?.recovery_count ?? 0;
  const effective = mode || "standard";
  return effective === "standard" ? `${count}/${limit} standard` : `${count} ${effective}`;
}

/** Where a token is in its life: bound, waiting for a key, or waiting for a secret. */
export function bindingSummary(token: Token): string {
  const status = token.status?.bound_keypair;
  if (status?.bound_public_key) return "bound";
  if (token.spec.bound_keypair.onboarding.initial_public_key) return "awaiting join (key)";
  if (status?.registration_secret) return "awaiting join (secret)";
  return "unbound";
}

/** Tokens: name, method, bot, recoveries, binding, expiry. */
export function tokensTable(tokens: Token[]): string {
  return formatTable(
    ["Token", "Type", "Bot", "Recovery", "State", "Expiry Time (UTC)"],
    tokens.map((t) => [
      t.metadata.name,
      t.spec.join_method,
      t.spec.bot_name,
      recoverySummary(t),
      bindingSummary(t),
      t.metadata.expires ?? "never",
    ]),
  );
}

/** `join_token=example`, the lock's targets. */
export function lockTargetSummary(lock: Lock): string {
  return Object.entries(lock.spec.target)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

/** Locks: name, target, message, expiry, in force or not. */
export function locksTable(locks: Lock[], now: Date): string {
  return formatTable(
    ["ID", "Target", "Message", "Expires", "In Force"],
    locks.map((l) => {
      const expires = l.spec.expires ?? l.metadata.expires;
      const inForce = expires === undefined || Date.parse(expires) > now.getTime();
      return [
        l.metadata.name,
        lockTargetSummary(l),
        l.spec.message ?? "",
        expires ?? "never",
        inForce ? "yes" : "no",
      ];
    }),
  );
}

/** Roles: name and allowed logins. */
export function rolesTable(roles: Role[]): string {
  return formatTable(
    ["Role", "Allowed Logins"],
    roles.map((r) => [r.metadata.name, (r.spec.allow?.logins ?? []).join(",")]),
  );
}

/** Workload identities: name and SPIFFE ID template. */
export function workloadIdentitiesTable(items: WorkloadIdentity[]): string {
  return formatTable(
    ["Workload Identity", "SPIFFE ID"],
    items.map((w) => [w.metadata.name, w.spec.spiffe.id]),
  );
}

function latest<T>(list: T[]): T | undefined {
  return list.length > 0 ? list[list.length - 1] : undefined;
}

function lastSeen(instance: BotInstance): string | undefined {
  const times = [
    latest(instance.status.latest_heartbeats)?.recorded_at,
    latest(instance.status.latest_authentications)?.authenticated_at,
    instance.status.initial_authentication?.authenticated_at,
  ].filter((t): t is string => t !== undefined);
  return times.sort().at(-1);
}

function latestAuthentication(instance: BotInstance): Authentication | undefined {
  return latest(instance.status.latest_authentications) ?? instance.status.initial_authentication;
}

/** Bot instances: id, join method, host, joined, last seen, generation. */
export function botInstancesTable(instances: BotInstance[]): string {
  return formatTable(
    ["ID", "Join Method", "Hostname", "Joined", "Last Seen", "Generation"],
    instances.map((i) => {
      const initial = i.status.initial_authentication;
      const last = latestAuthentication(i);
      const method = last?.join_method ?? "n/a";
      const initialMethod = initial?.join_method;
      return [
        `${i.spec.bot_name}/${i.spec.instance_id}`,
        initialMethod && initialMethod !== method ? `${method} (${initialMethod})` : method,
        latest(i.status.latest_heartbeats)?.hostname ?? "n/a",
        initial?.authenticated_at ?? "n/a",
        lastSeen(i) ?? "n/a",
        String(last?.generation ?? "n/a"),
      ];
    }),
  );
}

function authenticationFields(a: Authentication): string {
  return formatFields([
    ["Authenticated At", a.authenticated_at],
    ["Join Method", a.join_method],
    ["Join Token", a.join_token],
    ["Generation", String(a.generation)],
  ], "  ");
}

function heartbeatFields(h: Heartbeat): string {
  return formatFields([
    ["Recorded At", h.recorded_at],
    ["Hostname", h.hostname],
    ["Version", h.version],
    ["Uptime", h.uptime],
    ["OS/Arch", `${h.os}/${h.architecture}`],
    ["One Shot", String(h.one_shot)],
    ["Startup", String(h.is_startup)],
  ], "  ");
}

/** Everything `tctl bots instances show` prints about one instance. */
export function botInstanceDetails(i: BotInstance): string {
  const ref = `${i.spec.bot_name}/${i.spec.instance_id}`;
  const initial = i.status.initial_authentication;
  const last = latest(i.status.latest_authentications);
  const heartbeat = latest(i.status.latest_heartbeats);
  return [
    formatFields([
      ["Bot", i.spec.bot_name],
      ["ID", i.spec.instance_id],
      ["Previous ID", i.spec.previous_instance_id],
      ["Generation", String(latestAuthentication(i)?.generation ?? "n/a")],
      ["Expires", i.metadata.expires],
    ]),
    "\nInitial Authentication:\n" + (initial ? authenticationFields(initial) : "  none\n"),
    "\nLatest Authentication:\n" + (last ? authenticationFields(last) : "  none\n"),
    "\nLatest Heartbeat:\n" + (heartbeat ? heartbeatFields(heartbeat) : "  none\n"),
    `\nTo view the full record, run: tctl get bot_instance/${escapeLogText(ref)}\n`,
  ].join("");
}

/** The table `tctl get KIND --format text` prints for resources of one kind. */
export function resourcesText(kind: Kind, items: AnyResource[], now: Date): string {
  switch (kind) {
    case "bot":
      return botsTable(items as Bot[]);
    case "token":
      return tokensTable(items as Token[]);
    case "lock":
      return locksTable(items as Lock[], now);
    case "role":
      return rolesTable(items as Role[]);
    case "bot_instance":
      return botInstancesTable(items as BotInstance[]);
    case "workload_identity":
      return workloadIdentitiesTable(items as WorkloadIdentity[]);
  }
}

const ENVELOPE = new Set(["type", "id", "time", "status", "connection"]);

/**
 * A summary value: bare when it is one plain word, JSON-quoted otherwise, so
 * a value holding ` bot_name=prod` cannot pass for another field.
 */
function summaryValue(v: unknown): string {
  return typeof v === "string" && /^[^\s="\\]+$/.test(v) ? v : JSON.stringify(v);
}

/** One line of event-specific fields: `token_name=example bot_name=example`. */
export function auditSummary(e: AuditEvent): string {
  const parts = Object.entries(e)
    .filter(([k, v]) => !ENVELOPE.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${summaryValue(v)}`);
  if (e.status && !e.status.success) {
    parts.push(`error=${summaryValue(e.status.error ?? "unknown")}`);
  }
  return parts.join(" ");
}

/** Audit events: time, type, outcome, summary. */
export function auditTable(events: AuditEvent[]): string {
  return formatTable(
    ["Time", "Type", "Result", "Details"],
    events.map((e) => [
      e.time,
      e.type,
      e.status?.success === false ? "failure" : "success",
      auditSummary(e),
    ]),
  );
}
