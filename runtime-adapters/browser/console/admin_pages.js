// Admin pages: locks (create, remove, why), the audit timeline with filters
// and plots, CA status, enrolled browsers.
import { AUDIT_EVENT_TYPES } from "./client.js";
import { h, pager, routeQuery, table } from "./dom.js";
import { failuresChart, renewalsChart } from "./plot.js";

function lockTarget(t) {
  return Object.entries(t).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

export async function locksPage(api, ui) {
  const locks = await api.list("lock");
  const remove = (name) => () => ui.act(() => api.delete("lock", name), `Removed lock ${name}.`);
  const kind = h(
    "select",
    { name: "kind" },
    ["user", "bot_instance_id", "join_token"].map((k) => h("option", { value: k }, k)),
  );
  const value = h("input", { name: "value", required: true, size: 36 });
  const message = h("input", { name: "message", size: 30, placeholder: "why" });
  const ttl = h("input", { name: "ttl_minutes", type: "number", min: 1, size: 6 });
  const create = async (event) => {
    event.preventDefault();
    const minutes = Number(ttl.value);
    const lock = {
      kind: "lock",
      version: "v2",
      metadata: { name: crypto.randomUUID() },
      spec: {
        target: { [kind.value]: value.value.trim() },
        ...(message.value.trim() ? { message: message.value.trim() } : {}),
        ...(ttl.value && minutes > 0
          ? { expires: new Date(Date.now() + minutes * 60_000).toISOString() }
          : {}),
      },
    };
    await ui.act(() => api.put(lock, "create"), `Created lock ${lock.metadata.name}.`);
  };
  return h(
    "section",
    {},
    h("h2", {}, `Locks (${locks.length})`),
    h(
      "form",
      { id: "lock-form", onsubmit: create },
      h("label", {}, "Target", kind),
      h("label", {}, "Value", value),
      h("label", {}, "Message", message),
      h("label", {}, "TTL (minutes, empty: none)", ttl),
      h("button", { type: "submit" }, "Create lock"),
    ),
    table(
      "locks",
      ["Name", "Target", "Message", "Expires", "Created by", "Created", ""],
      locks.map((l) => [
        { text: l.metadata.name, class: "mono" },
        lockTarget(l.spec.target),
        l.spec.message ?? "",
        l.spec.expires ?? "never",
        l.spec.created_by ?? "",
        l.spec.created_at ?? "",
        h("button", { type: "button", onclick: remove(l.metadata.name) }, "Remove"),
      ]),
    ),
  );
}

const ENVELOPE = new Set(["type", "id", "time", "status", "connection"]);

/** What an audit event is about, in one line: every field past the envelope, keys shortened. */
function summary(e) {
  const parts = [];
  for (const [k, v] of Object.entries(e)) {
    if (ENVELOPE.has(k) || v === undefined || v === null || v === "") continue;
    const text = typeof v === "object" ? JSON.stringify(v) : String(v);
    parts.push(`${k}=${text.length > 48 ? `${text.slice(0, 24)}…${text.slice(-12)}` : text}`);
  }
  return parts.join(" ");
}

export async function auditPage(api) {
  const params = routeQuery();
  const type = params.get("type") ?? "";
  const after = params.get("after") ?? undefined;
  const [page, joins, failed] = await Promise.all([
    api.audit({ ...(type ? { type } : {}), limit: 50, ...(after ? { after } : {}) }),
    api.audit({ type: "bot.join", limit: 1000 }),
    api.audit({ limit: 1000 }),
  ]);
  const filter = h(
    "select",
    {
      id: "audit-type",
      onchange: (e) => {
        location.hash = e.target.value
          ? `#/audit?type=${encodeURIComponent(e.target.value)}`
          : "#/audit";
      },
    },
    h("option", { value: "" }, "all types"),
    AUDIT_EVENT_TYPES.map((t) => h("option", { value: t, selected: t === type }, t)),
  );
  return h(
    "section",
    {},
    h("h2", {}, "Audit timeline"),
    h(
      "div",
      { class: "plots" },
      h("figure", {}, h("figcaption", {}, "Renewals over time"), renewalsChart(joins.items)),
      h("figure", {}, h("figcaption", {}, "Failures by code"), failuresChart(failed.items)),
    ),
    h(
      "form",
      {},
      h("label", {}, "Type", filter),
    ),
    table(
      "audit",
      ["Time", "Type", "Outcome", "Details", "From"],
      page.items.map((e) => [
        e.time,
        e.type,
        e.status.success ? "ok" : `failed: ${e.status.error ?? ""}`,
        summary(e),
        e.connection?.remote_addr ?? "",
      ]),
    ),
    pager("audit", type ? { type } : {}, page.next, "Older events"),
  );
}

/** `[path, value]` rows of a JSON object, nested objects flattened with dots. */
function flatten(value, prefix = "") {
  if (value === null || typeof value !== "object") return [[prefix, String(value)]];
  if (Array.isArray(value)) return value.flatMap((v, i) => flatten(v, `${prefix}[${i}]`));
  return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
}

/** The key a CA signs with, as its pin, fingerprint or key id. */
function signingKey(ca) {
  const k = (Array.isArray(ca.keys) ? ca.keys : []).find((x) => x?.role === "signing") ?? {};
  return k.tls_pin ?? k.ssh_fingerprint ?? k.kid ?? "";
}

export async function caPage(api) {
  const status = await api.statusFields();
  const cas = Array.isArray(status.cas) ? status.cas : [];
  const rest = Object.fromEntries(Object.entries(status).filter(([k]) => k !== "cas"));
  const text = (v) => (v === undefined || v === null ? "" : String(v));
  return h(
    "section",
    {},
    h("h2", {}, "Cluster and CA status"),
    table("ca", ["Field", "Value"], flatten(rest).map(([k, v]) => [k, { text: v, class: "mono" }])),
    cas.length
      ? [
        h("h2", {}, "Certificate authorities"),
        table(
          "cas",
          [
            "CA",
            "Phase",
            "Mode",
            "Signing key",
            "Keys",
            "Dropped",
            "Phase changed",
            "Last rotated",
          ],
          cas.map((ca) => [
            text(ca.type),
            text(ca.phase),
            text(ca.mode),
            { text: signingKey(ca), class: "mono" },
            text(Array.isArray(ca.keys) ? ca.keys.length : ""),
            text(ca.dropped_keys),
            text(ca.phase_changed_at),
            text(ca.last_rotated),
          ]),
        ),
        h("h2", {}, "Every field"),
        table(
          "ca-fields",
          ["Field", "Value"],
          flatten({ cas }).map(([k, v]) => [k, { text: v, class: "mono" }]),
        ),
      ]
      : null,
  );
}

export async function browsersPage(api, ui) {
  const browsers = await api.browsers();
  const revoke = (id) => () => ui.act(() => api.revokeBrowser(id), `Revoked browser ${id}.`);
  return h(
    "section",
    {},
    h("h2", {}, `Enrolled browsers (${browsers.length})`),
    table(
      "browsers",
      ["ID", "Label", "User", "Enrolled", "Expires", "By", "From", ""],
      browsers.map((b) => [
        { text: b.id, class: "mono" },
        b.label ?? "",
        b.username,
        b.enrolled_at,
        b.expires,
        b.enrolled_by,
        b.remote_addr ?? "",
        h("button", { type: "button", onclick: revoke(b.id) }, "Revoke"),
      ]),
    ),
  );
}
