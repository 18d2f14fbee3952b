// Fleet pages: bots, bot instances (with health) and join tokens (recovery
// budget, bound key, keypair rotation requests).
import { h, pager, routeQuery, table } from "./dom.js";

/** Rows per page of the fleet listings, unless the route says `limit=N` (1-1000). */
const PAGE = 100;

/** The page the route asks for: its size, cursor, and the parameters paging links keep. */
function paging(q = routeQuery()) {
  const n = Number(q.get("limit"));
  const limit = Number.isInteger(n) && n >= 1 && n <= 1000 ? n : PAGE;
  const after = q.get("after") ?? undefined;
  return {
    query: { limit, ...(after ? { after } : {}) },
    keep: q.has("limit") ? { limit: String(limit) } : {},
  };
}

/** An instance not seen (join or heartbeat) for this long is shown as stale. */
const STALE_MS = 60 * 60 * 1000;

const last = (a) => (a && a.length ? a[a.length - 1] : undefined);
const later = (a, b) => (!a ? b : !b ? a : a > b ? a : b);

/** True if `lock` is in force and every target field it sets matches `subject` (the server's rule). */
export function lockMatches(lock, subject, now) {
  const expires = lock.spec.expires ?? lock.metadata.expires;
  if (expires && new Date(expires) <= now) return false;
  const t = lock.spec.target;
  return Object.entries(t).every(([k, v]) => v === undefined || subject[k] === v);
}

/** Health of a bot instance: locked, no heartbeat, stale or healthy. */
export function instanceHealth(instance, locks, now) {
  const auth = last(instance.status.latest_authentications) ??
    instance.status.initial_authentication;
  const beat = last(instance.status.latest_heartbeats) ?? instance.status.initial_heartbeat;
  const subject = {
    user: `bot-${instance.spec.bot_name}`,
    bot_instance_id: instance.spec.instance_id,
    join_token: auth?.join_token,
  };
  if (locks.some((l) => lockMatches(l, subject, now))) return "locked";
  const seen = later(auth?.authenticated_at, beat?.recorded_at);
  if (!beat) return "no-heartbeat";
  return seen && now - new Date(seen) < STALE_MS ? "healthy" : "stale";
}

export async function botsPage(api) {
  const { query, keep } = paging();
  const page = await api.listPage("bot", query);
  return h(
    "section",
    {},
    h("h2", {}, "Bots"),
    table(
      "bots",
      ["Name", "Roles", "Instances", "Max session TTL"],
      page.items.map((b) => [
        b.metadata.name,
        b.spec.roles.join(", "),
        h("a", { href: `#/instances?${new URLSearchParams({ bot: b.metadata.name })}` }, "show"),
        b.spec.max_session_ttl ?? "",
      ]),
    ),
    pager("bots", keep, page.next),
  );
}

export async function instancesPage(api) {
  const q = routeQuery();
  const bot = q.get("bot") ?? undefined;
  const { query, keep } = paging(q);
  const [page, locks] = await Promise.all([
    api.listPage("bot_instance", { ...query, ...(bot ? { bot } : {}) }),
    api.list("lock"),
  ]);
  const instances = page.items;
  const now = new Date();
  return h(
    "section",
    {},
    h("h2", {}, bot ? `Instances of bot ${bot}` : "Bot instances"),
    bot ? h("p", {}, h("a", { href: "#/instances" }, "All bots")) : null,
    table(
      "instances",
      [
        "Bot",
        "Instance",
        "Hostname",
        "Version",
        "Joined",
        "Last heartbeat",
        "Generation",
        "Health",
      ],
      instances.map((i) => {
        const auth = last(i.status.latest_authentications) ?? i.status.initial_authentication;
        const beat = last(i.status.latest_heartbeats) ?? i.status.initial_heartbeat;
        const health = instanceHealth(i, locks, now);
        return [
          i.spec.bot_name,
          { text: i.spec.instance_id, class: "mono" },
          beat?.hostname ?? "",
          beat?.version ?? "",
          i.status.initial_authentication?.authenticated_at ?? "",
          beat?.recorded_at ?? "",
          auth ? String(auth.generation) : "",
          { text: health, class: `health-${health}` },
        ];
      }),
    ),
    pager("instances", { ...keep, ...(bot ? { bot } : {}) }, page.next),
  );
}

/** A short, recognisable form of a bound public key (type and the end of its base64). */
function keySummary(key) {
  if (!key) return "";
  const [type, b64] = key.split(" ");
  return b64 ? `${type} …${b64.slice(-12)}` : key.slice(0, 24);
}

export async function tokensPage(api, ui) {
  const { query, keep } = paging();
  const page = await api.listPage("token", query);
  const tokens = page.items;
  const rotate = (name) => () =>
    ui.act(
      () => api.rotateToken(name),
      `Keypair rotation requested for token ${name}: the bot rotates at its next renewal.`,
    );
  return h(
    "section",
    {},
    h("h2", {}, "Join tokens"),
    table(
      "tokens",
      [
        "Name",
        "Bot",
        "Mode",
        "Recoveries (used/limit)",
        "Last recovery",
        "Bound key",
        "Bound instance",
        "Rotation requested",
        "",
      ],
      tokens.map((t) => {
        const spec = t.spec.bound_keypair;
        const st = t.status?.bound_keypair ?? {};
        return [
          t.metadata.name,
          t.spec.bot_name,
          spec.recovery.mode || "standard",
          `${st.recovery_count ?? 0}/${spec.recovery.limit}`,
          st.last_recovered_at ?? "",
          { text: keySummary(st.bound_public_key), class: "mono" },
          { text: st.bound_bot_instance_id ?? "", class: "mono" },
          spec.rotate_after ?? "",
          h("button", { type: "button", onclick: rotate(t.metadata.name) }, "Request rotation"),
        ];
      }),
    ),
    pager("tokens", keep, page.next),
  );
}
