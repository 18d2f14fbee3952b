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

/** The messages of an error and its causes, outermost first (five deep at most). */
function messageChain(err: unknown): string[] {
  const chain: string[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    chain.push(e.message);
  }
  return chain;
}

/** The deepest message of an error chain, without hyper's "error sending request for url (…)". */
function innermost(err: unknown): string {
  const message = messageChain(err).at(-1)?.split("\n")[0] ?? String(err);
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
 * True when the connection was reset while it was being set up (TCP or TLS
 * handshake), before any byte of the request was written: hyper says
 * "client error (Connect)". An auth service swapping its TLS certificate
 * during a CA rotation closes a listener, and the kernel resets connections
 * still queued on it (unless `net.ipv4.tcp_migrate_req` is 1), so sending
 * again on a new connection is safe for any method: the server saw nothing.
 */
function resetWhileConnecting(err: unknown): boolean {
  const text = messageChain(err).join("\n");
  return /client error \(Connect\)/.test(text) &&
    /Connection reset|reset by peer|ECONNRESET|tls handshake eof|peer closed connection/i.test(
      text,
    );
}

/** Pauses before each new attempt after {@linkcode resetWhileConnecting}. */
const RECONNECT_DELAYS_MS = [25, 150];

/**
 * Wraps a fetch so a failure to send becomes a `KeyboundError` naming the
 * cause (`TLS_UNTRUSTED` or `CONNECTION_FAILED`); an abort, a timeout and
 * failures it does not know pass through unchanged. A connection reset
 * before the request was sent is tried again on a new connection, twice at
 * most (see {@linkcode resetWhileConnecting}).
 */
export function classifyingFetchFailures(inner: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    for (let attempt = 0;; attempt++) {
      try {
        return await inner(input, init);
      } catch (err) {
        const replayable = !(input instanceof Request) && !(init?.body instanceof ReadableStream);
        if (
          replayable && attempt < RECONNECT_DELAYS_MS.length && !init?.signal?.aborted &&
          err instanceof TypeError && resetWhileConnecting(err)
        ) {
          await new Promise((r) => setTimeout(r, RECONNECT_DELAYS_MS[attempt]));
          continue;
        }
        const known = err instanceof TypeError ? fetchFailure(err, hostOf(input)) : null;
        if (!known) throw err;
        throw new KeyboundError(known.code, known.message, { cause: err });
      }
    }
  }) as typeof fetch;
}
