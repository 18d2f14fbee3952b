/**
 * Calls from the agent to the auth service's bot API other than the join:
 * signed `POST`s by the bot's current identity (docs/protocol.md §2) and
 * unauthenticated `GET`s of public documents, each answer validated against
 * its wire schema.
 *
 * @module
 */
import type * as z from "zod";
import { callApi } from "../protocol/http_client.ts";
import type { BotIdentity } from "./identity.ts";

/** The auth service as the bot's outputs reach it. */
export interface BotApi {
  /** Signed `POST` of `body` to `path` as `identity`; returns the validated response. */
  post<S extends z.ZodType>(
    identity: BotIdentity,
    path: string,
    body: unknown,
    response: S,
    signal?: AbortSignal,
  ): Promise<z.infer<S>>;
  /** Unauthenticated `GET` of `path`; returns the validated response. */
  get<S extends z.ZodType>(path: string, response: S, signal?: AbortSignal): Promise<z.infer<S>>;
}

/** Options of {@linkcode createBotApi}. */
export interface BotApiOptions {
  /** Auth service base URL, without a trailing slash. */
  baseUrl: string;
  /** The fetch carrying the trust configuration (pinned CA). */
  fetch: typeof fetch;
}

/** Builds a {@linkcode BotApi} over `fetch`. */
export function createBotApi(o: BotApiOptions): BotApi {
  return {
    post: (identity, path, body, response, signal) =>
      callApi(o, {
        method: "POST",
        path,
        body,
        signer: identity,
        response,
        ...(signal ? { signal } : {}),
      }),
    get: (path, response, signal) =>
      callApi(o, { method: "GET", path, response, ...(signal ? { signal } : {}) }),
  };
}
