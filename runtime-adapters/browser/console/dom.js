// DOM building for the console: every value becomes text (append/textContent),
// never markup; the CSP's Trusted Types rule refuses HTML strings anyway.

/** An element with attributes, listeners (`on…`) and children (nodes or text). */
export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  setProps(e, props);
  appendAll(e, children);
  return e;
}

/** An SVG element, built the same way. */
export function svg(tag, props = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setProps(e, props);
  appendAll(e, children);
  return e;
}

function setProps(e, props) {
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.setAttribute("class", v);
    else e.setAttribute(k, String(v));
  }
}

function appendAll(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : String(c));
  }
}

/** A table: `id`, header texts, and rows of cells (text, node, or {text, class}). */
export function table(id, headers, rows) {
  return h(
    "table",
    { id },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      rows.map((r) =>
        h(
          "tr",
          {},
          r.map((c) =>
            c !== null && typeof c === "object" && !(c instanceof Node)
              ? h("td", { class: c.class }, c.text ?? "")
              : h("td", {}, c ?? "")
          ),
        )
      ),
    ),
  );
}

/** Replaces the children of `parent`. */
export function show(parent, ...children) {
  parent.replaceChildren();
  appendAll(parent, children);
}

/** The query of the current route (`#/page?key=value`). */
export function routeQuery() {
  return new URLSearchParams(location.hash.split("?")[1] ?? "");
}

/**
 * Paging links of a listing on `route`: back to the first page when this is
 * a later one, on to the page after `next` when there is one. `base` holds
 * the route's other parameters (filters).
 */
export function pager(route, base, next, nextText = "Next page") {
  const href = (extra) => {
    const q = new URLSearchParams({ ...base, ...extra });
    return q.size ? `#/${route}?${q}` : `#/${route}`;
  };
  return h(
    "p",
    { class: "pager" },
    routeQuery().has("after")
      ? h("a", { href: href({}), id: `${route}-first` }, "First page")
      : null,
    next ? h("a", { href: href({ after: next }), id: `${route}-next` }, nextText) : null,
  );
}
