/**
 * The fleet console's files under `/web/`, every one answered with a strict
 * Content-Security-Policy: scripts, styles, images and connections from this
 * origin only, no inline script or style, no framing, and Trusted Types
 * required so that no string can reach an HTML sink (docs/browser.md).
 * The files are handed over by the runtime adapter; nothing here reads a disk.
 *
 * @module
 */
import { Hono } from "hono";
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

/** Routes serving `assets` at `/web/NAME` (and `index.html` at `/web/`). */
export function consoleAssetRoutes(assets: ConsoleAssets): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.get("/web", (c) => c.redirect("/web/", 308));
  const serve = (name: string) => {
    const asset = assets.get(name);
    if (!asset) return new Response("not found", { status: 404, headers: HEADERS });
    return new Response(asset.body, { headers: { ...HEADERS, "content-type": asset.type } });
  };
  r.get("/web/", () => serve("index.html"));
  r.get("/web/:name{[a-z0-9_-]+\\.(html|js|css|svg)}", (c) => serve(c.req.param("name")));
  return r;
}
