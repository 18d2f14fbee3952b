/**
 * Calls from the agent to the auth service's bot API other than the join:
 * signed `POST`s by the bot's current identity (docs/protocol.md §2) and
 * unauthenticated `GET`s of public documents, each answer validated against
 * its wire schema.
 *
 * @module
 */
import type { z } from "zod";
import { errorFromWire, KeyboundError } from "../errors.ts";
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

async function answer<S extends z.ZodType>(
  res: Response,
  path: string,
  schema: S,
): Promise<z.infer<S>> {
  const json = await res.json().catch(() => null);
  if (!res.ok) throw errorFromWire(res.status, json);
  const r = schema.safeParse(json);
  if (!r.success) {
    throw new KeyboundError("CONNECTION_FAILED", `${path}: the server's answer is malformed`);
  }
  return r.data;
}

/** Builds a {@linkcode BotApi} over `fetch`. */
export function createBotApi(o: BotApiOptions): BotApi {
  const send = async (path: string, init: RequestInit): Promise<Response> => {
    try {
      return await o.fetch(o.baseUrl + path, init);
    } catch (cause) {
      throw new KeyboundError("CONNECTION_FAILED", `${path}: cannot reach ${o.baseUrl}`, {
        cause,
      });
    }
  };
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
      return await answer(res, path, response);
    },
    async get(path, response, signal) {
      return await answer(await send(path, { method: "GET", signal }), path, response);
    },
  };
}
