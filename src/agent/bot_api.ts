/**
 * Calls from the agent to the auth service's bot API other than the join:
 * signed `POST`s by the bot's current identity (docs/protocol.md §2) and
 * unauthenticated `GET`s of public documents, each answer validated against
 * its wire schema.
 *
 * @module
 */
import type { z } from "zod";
import { readAnswer, sendRequest } from "../protocol/http_client.ts";
import { signRequest } from "../protocol/signed_request.ts";
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
  const send = (path: string, init: RequestInit) =>
    sendRequest(o.fetch, new URL(o.baseUrl + path), init);
  return {
    async post(identity, path, body, response, signal) {
      const text = JSON.stringify(body);
      const authorization = await signRequest(
        { certDer: identity.certDer, privateKey: identity.privateKey },
        { method: "POST", path, body: text },
      );
      const res = await send(path, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: text,
        signal,
      });
      return await readAnswer(res, response, `answer to ${path}`);
    },
    async get(path, response, signal) {
      return await readAnswer(
        await send(path, { method: "GET", signal }),
        response,
        `answer to ${path}`,
      );
    },
  };
}
