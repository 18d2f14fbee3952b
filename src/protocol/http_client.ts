/**
 * The one client of the auth service's HTTP API, used by the join client,
 * tbot's heartbeats and bot API, tctl and the Worker bot: it signs the request
 * (docs/protocol.md §2) when given a signer, turns a failure to reach the
 * server into `CONNECTION_FAILED` (or the code an adapter's fetch raised, such
 * as `TLS_UNTRUSTED`), sends again on a new connection when the adapter says
 * the connection was reset before the request was written, rebuilds the
 * server's error with its stable code (`{"error":{"code","message"}}`), and
 * validates every answer against its wire schema, so all of them fail alike.
 * A 2xx answer it cannot use is `CONNECTION_FAILED` marked in `details` (see
 * {@linkcode UnexpectedAnswerDetails}), so a CLI can say what it is: not
 * JSON (something else answered at that address), or JSON that does not
 * match (a client and a server of different versions).
 *
 * @module
 */
import * as z from "zod";
import { errorFromWire, isKeyboundError, KeyboundError } from "../errors.ts";
import { firstIssuePath, formatZodError } from "../util/zod_error.ts";
import { type RequestSigner, signRequest } from "./signed_request.ts";

/** Where the auth service is and how to reach it. */
export interface ApiTarget {
  /** `https://host:port` of the auth service (a trailing slash is ignored). */
  baseUrl: string;
  /** The fetch carrying the trust configuration (pinned CA, service binding, …). */
  fetch: typeof fetch;
}

/** One call of {@linkcode callApi}. */
export interface ApiCall<S extends z.ZodType> {
  /** HTTP method. */
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path, optionally with a query string (which the signature does not cover, §2). */
  path: string;
  /** JSON body; omit for none. */
  body?: unknown;
  /** Signs the request as this identity; omit for an unauthenticated call. */
  signer?: RequestSigner;
  /** `chash` claim of a join `continue` answering a challenge. */
  chash?: string;
  /** Signing time; defaults to now. */
  now?: Date;
  /** Cancels the request. */
  signal?: AbortSignal;
  /** Wire schema of a 2xx answer. */
  response: S;
  /** What the answer is, for the error when it does not match (default: `answer to PATH`). */
  what?: string;
}

/**
 * `details` of the `CONNECTION_FAILED` for a 2xx answer {@linkcode callApi}
 * cannot use; exactly one of the two is set. A CLI tells the cases apart by
 * these, never by the message.
 */
export interface UnexpectedAnswerDetails {
  /** The answer is not JSON (or empty): whatever answered is probably not the auth service. */
  answer_not_json?: true;
  /**
   * The answer is JSON but not the wire schema: the first field that failed
   * (`certs.tls`, `(root)`), as `details.path` names fields. The client and
   * the auth service are probably of different versions.
   */
  answer_schema_mismatch?: string;
}

/**
 * The error for a JSON answer (`what`: "answer to GET /v1/status", "token")
 * that does not match its wire schema: `CONNECTION_FAILED` naming the first
 * field that failed, in the message and in `details.answer_schema_mismatch`.
 * The one way to report it, here and where an answer is checked again
 * after {@linkcode callApi} (src/protocol/admin.ts).
 */
export function unexpectedAnswer(what: string, error: z.ZodError): KeyboundError {
  // A union none of whose options matched names the field of the option that got
  // furthest (step.type of a join answer's unknown step), as the server's errors do.
  const details: UnexpectedAnswerDetails = { answer_schema_mismatch: firstIssuePath(error) };
  return new KeyboundError(
    "CONNECTION_FAILED",
    `unexpected ${what} from the server: ${formatZodError(error)}`,
    { details: { ...details } },
  );
}

/** An answer the caller does not read (heartbeats, deletes): any JSON is fine. */
export const IgnoredAnswer: z.ZodType<unknown> = z.unknown();

/**
 * Pauses before each resend of a request whose connection an adapter reports
 * as reset before the request was written (`CONNECTION_RESET_BEFORE_SEND`:
 * an auth instance restarting or a balancer failing over resets the
 * handshakes queued on a closed listener). The server saw nothing, so
 * resending is safe for any method, the signed header included; two resends
 * at most.
 */
const RESEND_DELAYS_MS = [25, 150];

/**
 * Runs `send` and, while it fails with `CONNECTION_RESET_BEFORE_SEND`, runs
 * it again after a short pause (twice at most, not once `signal` aborted);
 * any other failure, and the last reset, is thrown as it came. The one resend
 * policy: {@linkcode callApi} sends every API request through it, and the
 * agent's unverified first contact (src/agent/trust/) learns the host CA
 * through it, so a reset there is retried the same way.
 *
 * @example
 * ```ts ignore
 * const contact = await resendingAfterReset(() => firstContact(baseUrl));
 * ```
 */
export async function resendingAfterReset<T>(
  send: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (
        !isKeyboundError(err, "CONNECTION_RESET_BEFORE_SEND") ||
        attempt >= RESEND_DELAYS_MS.length || signal?.aborted
      ) throw err;
      await new Promise((r) => setTimeout(r, RESEND_DELAYS_MS[attempt]));
    }
  }
}

/** The first line of the innermost `cause` (runtimes put the TLS or socket error there). */
function innermostMessage(err: unknown): string {
  let message = String(err);
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    message = e.message.split("\n")[0];
  }
  return message;
}

/**
 * Sends one call to the auth service and returns its validated answer.
 *
 * @example Read the public host CA, then make a signed call
 * ```ts ignore
 * import { callApi } from "./http_client.ts";
 * import { CaResponse } from "./discovery.ts";
 *
 * const target = { baseUrl: "https://auth.example.com:3025", fetch };
 * const ca = await callApi(target, { method: "GET", path: "/v1/ca/host", response: CaResponse });
 * ```
 */
export async function callApi<S extends z.ZodType>(
  target: ApiTarget,
  call: ApiCall<S>,
): Promise<z.infer<S>> {
  const url = new URL(call.path, target.baseUrl.replace(/\/+$/, "") + "/");
  const text = call.body === undefined ? undefined : JSON.stringify(call.body);
  const headers: Record<string, string> = { accept: "application/json" };
  if (text !== undefined) headers["content-type"] = "application/json";
  if (call.signer) {
    headers.authorization = await signRequest(call.signer, {
      method: call.method,
      path: url.pathname,
      body: text ?? "",
      ...(call.chash === undefined ? {} : { chash: call.chash }),
      ...(call.now === undefined ? {} : { now: call.now }),
    });
  }
  // Called unbound: a browser's fetch throws "Illegal invocation" when `this` is not the window.
  const send = target.fetch;
  let res: Response;
  try {
    res = await resendingAfterReset(
      () =>
        send(url, {
          method: call.method,
          headers,
          ...(text === undefined ? {} : { body: text }),
          ...(call.signal ? { signal: call.signal } : {}),
        }),
      call.signal,
    );
  } catch (cause) {
    // An adapter's fetch may already know what went wrong (TLS_UNTRUSTED): keep its code
    // and words.
    const known = isKeyboundError(cause);
    throw new KeyboundError(
      known ? cause.code : "CONNECTION_FAILED",
      `cannot reach the auth service at ${url.origin}: ${
        known ? cause.message : innermostMessage(cause)
      }`,
      { cause },
    );
  }
  let raw: string;
  try {
    raw = await res.text();
  } catch (cause) {
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `lost the connection to ${url.origin} while reading the answer: ${innermostMessage(cause)}`,
      { cause },
    );
  }
  let json: unknown = null;
  let isJson = false;
  try {
    json = raw ? JSON.parse(raw) : null;
    isJson = raw !== "";
  } catch {
    // Reported below: as the status of an error, or as an answer that is not the schema.
  }
  if (!res.ok) throw errorFromWire(res.status, json);
  const parsed = call.response.safeParse(json);
  if (!parsed.success) {
    const what = call.what ?? `answer to ${call.method} ${url.pathname}`;
    if (isJson) throw unexpectedAnswer(what, parsed.error);
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `unexpected ${what} from the server: the answer is not JSON`,
      { details: { answer_not_json: true } satisfies UnexpectedAnswerDetails },
    );
  }
  return parsed.data;
}
