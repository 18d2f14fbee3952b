/**
 * Listings of the resource store: one page of a kind's live resources in name
 * order, with the cursor of the next (`tctl ... ls`, the admin API's list
 * routes).
 *
 * @module
 */
import { MAX_LIST_PAGE } from "../../protocol/admin.ts";
import { BadParameterError } from "../../errors.ts";
import { isStrictlyUnder, type Key } from "../../storage/backend.ts";
import type { Kind, ResourceOf } from "../../resources/schemas.ts";
import type { AnyResource } from "../../resources/validate.ts";
import type { ServerContext } from "../context.ts";
import { resourceKey, resourcePrefix } from "../keys.ts";
import { liveEntry, nameParts, type StoredResource } from "./read.ts";

/** Largest page of {@linkcode listResources} (the wire contract's). */
export const MAX_RESOURCE_PAGE = MAX_LIST_PAGE;
/** Page size of {@linkcode listResources} when none is asked for. */
export const DEFAULT_RESOURCE_PAGE = 100;

/** Options of {@linkcode listResources}. */
export interface ResourceListOptions {
  /** Page size (default {@linkcode DEFAULT_RESOURCE_PAGE}, at most {@linkcode MAX_RESOURCE_PAGE}). */
  limit?: number;
  /** Cursor: the `next` of the previous page (a resource name, `bot/id` for instances). */
  after?: string;
  /** Bot instances only: the instances of this bot. */
  bot?: string;
}

/** One page of resources in name order; `next` is present when more may follow. */
export interface ResourcePage<T extends AnyResource = AnyResource> {
  /** Live resources of the page (expired or malformed entries are skipped). */
  items: StoredResource<T>[];
  /** Cursor of the following page. */
  next?: string;
}

/**
 * Lists one page of the live resources of a kind in name order. Reads the
 * rows of the page and one more, however many resources exist; an expired or
 * malformed row still counts towards the page, so a page may hold fewer items
 * than `limit` while `next` says more follow.
 */
export async function listResources<K extends Kind>(
  ctx: ServerContext,
  kind: K,
  options: ResourceListOptions = {},
): Promise<ResourcePage<ResourceOf<K>>> {
  const limit = options.limit ?? DEFAULT_RESOURCE_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RESOURCE_PAGE) {
    throw new BadParameterError(`limit: must be an integer from 1 to ${MAX_RESOURCE_PAGE}`, {
      details: { path: "limit" },
    });
  }
  if (options.bot !== undefined && kind !== "bot_instance") {
    throw new BadParameterError("bot: only bot_instance listings filter by bot", {
      details: { path: "bot" },
    });
  }
  const prefix = options.bot === undefined
    ? resourcePrefix(kind)
    : resourcePrefix(kind, ...nameParts("bot", options.bot));
  let after: Key | undefined;
  if (options.after !== undefined) {
    let parts: string[];
    try {
      parts = nameParts(kind, options.after);
    } catch {
      throw new BadParameterError("after: not a cursor returned by this listing", {
        details: { path: "after" },
      });
    }
    after = resourceKey(kind, ...parts);
    if (!isStrictlyUnder(after, prefix)) {
      throw new BadParameterError("after: not a cursor returned by this listing", {
        details: { path: "after" },
      });
    }
  }
  // One row more than the page tells whether another page follows.
  const entries = await ctx.backend.list<unknown>(prefix, { limit: limit + 1, after });
  const page = entries.slice(0, limit);
  const items: StoredResource<ResourceOf<K>>[] = [];
  for (const e of page) {
    const live = liveEntry(ctx, kind, e, false);
    if (live) items.push(live);
  }
  if (entries.length <= limit) return { items };
  const last = page[page.length - 1].key;
  return { items, next: last.slice(resourcePrefix(kind).length).join("/") };
}
