/**
 * The fleet console's files under `/web/`, every one answered with a strict
 * Content-Security-Policy: scripts, styles, images and connections from this
 * origin only, no inline script or style, no framing, and Trusted Types
 * required so that no string can reach an HTML sink (docs/browser.md).
 * The files are handed over by the runtime adapter; nothing here reads a disk.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { toHex } from "../../util/encoding.ts";
import type { AppEnv } from "../hono_env.ts";

/** One console file. */
export interface ConsoleAsset {
  /** Its bytes. */
  body: Uint8Array<ArrayBuffer>;
  /** Its media type. */
  type: string;
}

/** The console's files by name (`index.html`, `console.js`, …). */
export type ConsoleAssets = ReadonlyMap<string, ConsoleAsset>;

/** The policy every console response carries. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

/** Media types of the files a console may hold, by extension. */
export const CONSOLE_MEDIA_TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

const HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  // Always revalidated, so a console update is never mixed with cached modules.
  "cache-control": "no-cache",
};

/** A file as served: its ETag and its gzip form, made once per process on first request. */
interface Prepared {
  etag: string;
  gzip: Uint8Array<ArrayBuffer>;
}

async function prepare(asset: ConsoleAsset): Promise<Prepared> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", asset.body));
  const etag = `"${toHex(digest).slice(0, 32)}"`;
  const stream = new Blob([asset.body]).stream().pipeThrough(new CompressionStream("gzip"));
  return { etag, gzip: new Uint8Array(await new Response(stream).arrayBuffer()) };
}

/** True if an `Accept-Encoding` value accepts gzip: by name, else by `*`, with a q above 0. */
export function acceptsGzip(header: string | undefined): boolean {
  const q: Record<string, number> = {};
  for (const part of (header ?? "").split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    const value = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v);
    q[name.trim()] = value === undefined ? 1 : Number(value);
  }
  return (q.gzip ?? q["*"] ?? 0) > 0;
}

/**
 * Routes serving `assets` at `/web/NAME` (and `index.html` at `/web/`):
 * gzip when the browser accepts it, and an ETag so that a reload revalidates
 * (`no-cache`) without downloading the files again.
 */
export function consoleAssetRoutes(assets: ConsoleAssets): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  const prepared = new Map<string, Promise<Prepared>>();
  r.get("/web", (c) => c.redirect("/web/", 308));
  const serve = async (c: Context<AppEnv>, name: string) => {
    const asset = assets.get(name);
    if (!asset) return new Response("not found", { status: 404, headers: HEADERS });
    let p = prepared.get(name);
    if (!p) prepared.set(name, p = prepare(asset));
    const { etag, gzip } = await p;
    const headers: Record<string, string> = { ...HEADERS, etag, vary: "accept-encoding" };
    if (c.req.header("if-none-match") === etag) return new Response(null, { status: 304, headers });
    headers["content-type"] = asset.type;
    if (!acceptsGzip(c.req.header("accept-encoding"))) return new Response(asset.body, { headers });
    return new Response(gzip, { headers: { ...headers, "content-encoding": "gzip" } });
  };
  r.get("/web/", (c) => serve(c, "index.html"));
  r.get("/web/:name{[a-z0-9_-]+\\.(html|js|css|svg)}", (c) => serve(c, c.req.param("name")));
  return r;
}
