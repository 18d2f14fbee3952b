/**
 * Page flags shared by the listing commands (`bots ls`, `bots instances ls`,
 * `tokens ls`, `locks ls`, `audit ls`): `--limit N` rows of one page and
 * `--after CURSOR`, the cursor the previous page printed. A listing never asks
 * the server for more than one page per request.
 *
 * @module
 */
import { MAX_LIST_PAGE } from "../../protocol/admin.ts";
import { escapeLogText } from "../../util/log.ts";
import { UsageError } from "./command.ts";
import type { TctlFlags } from "./options.ts";

/** Rows a listing prints when `--limit` is not given. */
export const DEFAULT_PAGE = 100;
/** The largest `--limit` (the server's largest page). */
export const MAX_PAGE = MAX_LIST_PAGE;

/** `--limit` and `--after` of a listing command. */
export interface PageFlags {
  /** Rows of the page. */
  limit: number;
  /** Cursor of the previous page. */
  after?: string;
}

/** Reads `--limit` (1..{@linkcode MAX_PAGE}, default {@linkcode DEFAULT_PAGE}) and `--after`. */
export function pageFlags(flags: TctlFlags): PageFlags {
  const text = flags.limit;
  const limit = text === undefined ? DEFAULT_PAGE : Number(text);
  if (text !== undefined && (!/^[0-9]+$/.test(text) || limit < 1 || limit > MAX_PAGE)) {
    throw new UsageError(`--limit: expected an integer from 1 to ${MAX_PAGE}, got "${text}"`);
  }
  return { limit, ...(flags.after ? { after: flags.after } : {}) };
}

/** The line that tells how to get the next page, or "" when this was the last. */
export function nextPageHint(command: string, next: string | undefined): string {
  // The command echoes argv (a bot name, a --search text): escaped like the cursor.
  return next === undefined ? "" : `\nMore: ${escapeLogText(`${command} --after ${next}`)}\n`;
}
