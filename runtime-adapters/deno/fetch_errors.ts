/**
 * Deno's `fetch` reports an untrusted server certificate only in the text of
 * a generic `TypeError("fetch failed")`'s cause. This adapter is the one
 * place that reads that text, so everything above it (tbot's refusal advice,
 * tctl's hint) can branch on the stable code `TLS_UNTRUSTED` instead.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";

/** rustls/hyper wording of a certificate that did not verify. */
const UNTRUSTED_CERTIFICATE = /invalid peer certificate|certificate|UnknownIssuer|NotValidForName/i;

function innermost(err: unknown): string {
  let message = String(err);
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    message = e.message.split("\n")[0];
  }
  return message.replace(/^error sending request for url \([^)]*\): /, "");
}

/** Wraps a fetch so a certificate failure becomes `TLS_UNTRUSTED`; other failures pass through. */
export function classifyingTlsFailures(inner: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    try {
      return await inner(input, init);
    } catch (err) {
      const message = innermost(err);
      if (!UNTRUSTED_CERTIFICATE.test(message)) throw err;
      throw new KeyboundError("TLS_UNTRUSTED", message, { cause: err });
    }
  }) as typeof fetch;
}
