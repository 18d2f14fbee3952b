/**
 * Reading the HTTP answer of the unverified first contact (see
 * `pinned_ca.ts`): the adapter hands over the raw bytes of one
 * `Connection: close` exchange, and this reads status and body.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";

/**
 * Parses an HTTP/1.1 response read to the end (Content-Length, chunked, or
 * close-delimited). Throws `CONNECTION_FAILED` if it is not HTTP.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
 * parseHttpResponse(bytes); // { status: 200, body: "{}" }
 * ```
 */
export function parseHttpResponse(bytes: Uint8Array): { status: number; body: string } {
  const text = new TextDecoder().decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) throw new KeyboundError("CONNECTION_FAILED", "the answer is not HTTP");
  const [statusLine, ...headerLines] = text.slice(0, split).split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw new KeyboundError("CONNECTION_FAILED", "the answer is not HTTP");
  const headers = new Map(headerLines.map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const;
  }));
  let body = text.slice(split + 4);
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    let out = "";
    let rest = body;
    for (;;) {
      const eol = rest.indexOf("\r\n");
      const n = parseInt(rest.slice(0, eol), 16);
      if (eol < 0 || Number.isNaN(n)) {
        throw new KeyboundError("CONNECTION_FAILED", "malformed chunked answer");
      }
      if (n === 0) break;
      out += rest.slice(eol + 2, eol + 2 + n);
      rest = rest.slice(eol + 2 + n + 2);
    }
    body = out;
  }
  return { status: Number(m[1]), body };
}
