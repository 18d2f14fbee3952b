/**
 * Enrolled browsers (docs/browser.md, console security model): one record
 * per browser, written by its enrollment and deleted by `tctl web rm`. The
 * record is what keeps a console certificate alive: request authentication
 * checks it on every request the certificate signs, so a revoked browser is
 * refused at its next call although its certificate is still within its
 * validity.
 *
 * @module
 */
import { KeyboundError, NotFoundError } from "../../errors.ts";
import { WebBrowser } from "../../protocol/web.ts";
import type { Mutation } from "../../storage/backend.ts";
import { auditMutations } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import { WEB_BROWSERS_PREFIX, webBrowserKey } from "../keys.ts";

export type { WebBrowser };

/** Most browsers one listing returns (the records expire with their certificates). */
export const MAX_BROWSERS_LISTED = 1000;

function revoked(id: string): KeyboundError {
  return new KeyboundError(
    "BROWSER_REVOKED",
    `browser ${id} is not enrolled (revoked or expired): ask an admin for tctl web enroll`,
  );
}

/**
 * Throws `BROWSER_REVOKED` unless browser `id` has a live record. Called by
 * request authentication for every certificate that names a browser.
 */
export async function assertBrowserEnrolled(
  ctx: ServerContext,
  id: string,
  certSha256: string,
  now: Date,
): Promise<void> {
  const entry = await ctx.backend.get(webBrowserKey(id));
  const parsed = entry ? WebBrowser.safeParse(entry.value) : undefined;
  if (!parsed?.success) throw revoked(id);
  // A record is bound to the one certificate its enrollment issued.
  if (parsed.data.cert_sha256 !== certSha256 || new Date(parsed.data.expires) <= now) {
    throw revoked(id);
  }
}

/** Every enrolled browser, oldest enrollment first (values are validated, not cast). */
export async function listBrowsers(ctx: ServerContext): Promise<WebBrowser[]> {
  const entries = await ctx.backend.list(WEB_BROWSERS_PREFIX, { limit: MAX_BROWSERS_LISTED });
  const out: WebBrowser[] = [];
  for (const e of entries) {
    const r = WebBrowser.safeParse(e.value);
    if (r.success) out.push(r.data);
    else ctx.log.warn("skipping an unreadable browser record", { key: e.key.join("/") });
  }
  return out.sort((a, b) => a.enrolled_at.localeCompare(b.enrolled_at));
}

/** Revokes browser `id` (deletes its record, audited) in one compare-and-swap. */
export async function revokeBrowser(
  ctx: ServerContext,
  id: string,
  actor: { user: string; remoteAddr?: string },
): Promise<void> {
  const key = webBrowserKey(id);
  const entry = await ctx.backend.get(key);
  if (!entry) throw new NotFoundError(`browser "${id}" is not enrolled`);
  const mutations: Mutation[] = [
    { type: "delete", key },
    ...auditMutations(ctx, {
      type: "web.revoked",
      status: { success: true },
      ...(actor.remoteAddr ? { connection: { remote_addr: actor.remoteAddr } } : {}),
      browser_id: id,
      user: actor.user,
    }),
  ];
  const r = await ctx.backend.commit({ checks: [{ key, version: entry.version }], mutations });
  if (!r.ok) throw new KeyboundError("CONFLICT", `browser "${id}" changed; try again`);
}
