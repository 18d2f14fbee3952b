/**
 * What tctl commands run against: the admin API (opened lazily, so `help`
 * and `version` need no connection), an output sink and file access, all
 * supplied by the runtime adapter.
 *
 * @module
 */
import type { AdminApi } from "../api_client.ts";

/** A file the admin edited (`tctl edit`). */
export interface EditSession {
  /** Where the edited text is (kept until {@linkcode EditSession.discard}). */
  path: string;
  /** The text after the editor exited. */
  text: string;
  /** Removes the file once its text is saved or unchanged. */
  discard(): Promise<void>;
}

/** Dependencies of every tctl command. */
export interface TctlContext {
  /** Opens (once) and returns the admin API client. */
  api(): Promise<AdminApi>;
  /** Writes text to standard output, as is. */
  out(text: string): void;
  /** Reads a text file (`-` is standard input). */
  readTextFile(path: string): Promise<string>;
  /** Opens `text` in the admin's editor and returns what was saved. */
  editText(text: string): Promise<EditSession>;
  /** Current time. */
  now(): Date;
  /** tctl's version. */
  version: string;
}
