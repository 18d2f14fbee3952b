/**
 * Deno's `fetch` (and `node:tls`) reports why a request could not be sent (an untrusted or
 * misnamed server certificate, a refused connection, a name that does not
 * resolve) only in the text of a generic `TypeError("fetch failed")`'s
 * cause. This adapter is the one place that reads that text: it turns it
 * into one plain sentence and a stable code — `TLS_UNTRUSTED` for a
 * certificate, `CONNECTION_FAILED` otherwise — so everything above it (tbot's
 * refusal advice, tctl's hint, `keypair create`'s warning) branches on the
 * code and shows the cause instead of "fetch failed".
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";

/** An error and its causes, outermost first (five deep at most). */
function errorChain(err: unknown): Error[] {
  const chain: Error[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    chain.push(e);
  }
  return chain;
}

/** The deepest message of an error chain, without hyper's "error sending request for url (…)". */
function innermost(err: unknown): string {
  const message = errorChain(err).at(-1)?.message.split("\n")[0] ?? String(err);
  return message
    .replace(/^error sending request (for url|from) \([^)]*\)(?: for \S+ \([^)]*\))?: /, "")
    .replace(/^error sending request from \S+ for \S+ \([^)]*\): /, "")
    .replace(/^client error \((Connect|SendRequest)\): /, "");
}

/** One known failure: how rustls/hyper word it, and what it means in a sentence. */
interface Cause {
  code: "TLS_UNTRUSTED" | "CONNECTION_FAILED";
  match: RegExp;
  text(m: RegExpMatchArray, host: string): string;
}

const CAUSES: Cause[] = [
  {
    code: "TLS_UNTRUSTED",
    match: /certificate not valid for name "([^"]*)"; certificate is only valid for (.*)$/,
    text: (m) =>
      `TLS: the server's certificate is not valid for the name "${m[1]}" (it is for ${
        m[2].replace(/(?:DnsName|IpAddress)\("?([^")]*)"?\)/g, "$1")
      }): connect by a name the certificate lists`,
  },
  {
    code: "TLS_UNTRUSTED",
    match: /NotValidForName|not valid for name|Hostname\/IP does not match certificate's altnames/,
    text: (_, host) => `TLS: the server's certificate is not valid for the name "${host}"`,
  },
  {
    code: "TLS_UNTRUSTED",
    match: /invalid peer certificate: (?:Expired|certificate expired)|certificate has expired/,
    text: () => "TLS: the server's certificate has expired (or this host's clock is wrong)",
  },
  {
    code: "TLS_UNTRUSTED",
    // The last three are node:tls's words (./node_https_fetch.ts).
    match:
      /invalid peer certificate: (?:UnknownIssuer|BadSignature)|unknown issuer|unable to verify the first certificate|unable to get (?:local )?issuer certificate|self[- ]signed certificate/i,
    text: () =>
      "TLS: the server's certificate is not trusted (issued by a CA this host does not trust)",
  },
  {
    code: "TLS_UNTRUSTED",
    match: /invalid peer certificate: (.*)$/,
    text: (m) => `TLS: the server's certificate is not trusted (${m[1]})`,
  },
  {
    code: "CONNECTION_FAILED",
    match: /Connection refused|ECONNREFUSED/i,
    text: (_, host) => `connection refused: nothing is listening at ${host}`,
  },
  {
    code: "CONNECTION_FAILED",
    match: /dns error|failed to lookup address|Name or service not known|ENOTFOUND|EAI_AGAIN/i,
    text: (_, host) => `DNS: the name ${host.replace(/:\d+$/, "")} does not resolve`,
  },
  {
    code: "CONNECTION_FAILED",
    match: /timed out|ETIMEDOUT/i,
    text: (_, host) => `connecting to ${host} timed out`,
  },
  {
    code: "CONNECTION_FAILED",
    match: /invalid HTTP version parsed|InvalidContentType|received corrupt message/i,
    text: () =>
      "the server does not speak this protocol (https:// to a plain-HTTP port, or the reverse?)",
  },
];

/**
 * The cause of a failed connection (by `fetch`, or by `node:tls` while a CA
 * is learned through a pin) in one sentence, with its code; null when the
 * text is not one this adapter knows.
 *
 * @example
 * ```ts ignore
 * fetchFailure(err, "auth.example.com")?.message; // "DNS: the name auth.example.com does not resolve"
 * ```
 */
export function fetchFailure(
  err: unknown,
  host: string,
): { code: Cause["code"]; message: string } | null {
  const raw = innermost(err);
  for (const cause of CAUSES) {
    const m = raw.match(cause.match);
    if (m) return { code: cause.code, message: cause.text(m, host) };
  }
  return null;
}

function hostOf(input: string | URL | Request): string {
  try {
    return new URL(input instanceof Request ? input.url : input).host;
  } catch {
    return String(input);
  }
}

/**
 * Wraps the failure of a transport that knows, by its own events, that not a
 * byte of the request was written when the connection failed (./node_https_fetch.ts:
 * its socket never finished the TLS handshake), so {@linkcode classifyingFetchFailures}
 * can tell a reset before the request from one after it: node:tls says
 * "socket hang up" for both.
 */
export class FailedBeforeRequest extends Error {
  /** @param cause the transport's error */
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "FailedBeforeRequest";
  }
}

/**
 * True when the connection was reset while it was being set up (TCP or TLS
 * handshake), before any byte of the request was written: hyper says
 * "client error (Connect)", ./node_https_fetch.ts wraps the error in
 * {@linkcode FailedBeforeRequest}. A listener that closes (an auth instance
 * restarting, a balancer failing over) has the kernel reset the connections
 * still queued on it; the auth service's own certificate swaps reset nothing.
 */
function resetBeforeRequest(err: unknown): boolean {
  const chain = errorChain(err);
  const text = chain.map((e) => e.message).join("\n");
  const before = /client error \(Connect\)/.test(text) ||
    chain.some((e) => e instanceof FailedBeforeRequest);
  return before &&
    /Connection reset|reset by peer|ECONNRESET|socket hang up|tls handshake eof|peer closed connection|socket disconnected before secure TLS/i
      .test(text);
}

/**
 * The `CONNECTION_RESET_BEFORE_SEND` error for `err` if it is a connection
 * reset before any byte of the request was written (see
 * {@linkcode resetBeforeRequest}), else undefined. Used for `fetch` here and
 * for the unverified first contact (./trust.ts), which wraps its socket's
 * error in {@linkcode FailedBeforeRequest} while the TLS handshake is not done.
 */
export function resetBeforeSendError(err: unknown, host: string): KeyboundError | undefined {
  return resetBeforeRequest(err) ? resetBeforeSend(host, err) : undefined;
}

/**
 * `CONNECTION_RESET_BEFORE_SEND` for a connection to `host` that a transport
 * knows ended before it wrote a byte of the request (`cause`: what it saw).
 */
export function resetBeforeSend(host: string, cause: unknown): KeyboundError {
  return new KeyboundError(
    "CONNECTION_RESET_BEFORE_SEND",
    `the connection to ${host} was reset before the request was sent ` +
      `(is the server restarting, or a balancer failing over?)`,
    { cause },
  );
}

/**
 * Wraps a fetch so a failure to send becomes a `KeyboundError` naming the
 * cause: `CONNECTION_RESET_BEFORE_SEND` for a connection reset before the
 * request was written (see {@linkcode resetBeforeSendError}; the one request
 * client, src/protocol/http_client.ts, sends again on it), else
 * `TLS_UNTRUSTED` or `CONNECTION_FAILED`. An abort, a timeout and failures
 * it does not know pass through unchanged.
 */
export function classifyingFetchFailures(inner: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    try {
      return await inner(input, init);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      const reset = resetBeforeSendError(err, hostOf(input));
      if (reset) throw reset;
      const known = fetchFailure(err, hostOf(input));
      if (!known) throw err;
      throw new KeyboundError(known.code, known.message, { cause: err });
    }
  }) as typeof fetch;
}
