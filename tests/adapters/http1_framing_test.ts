/**
 * The request and answer boundaries the public front follows
 * (src/server/rate_limit/http1_framing.ts): pipelined requests with
 * Content-Length and chunked bodies, fed whole and a byte at a time, and
 * answers to HEAD, 1xx, 204 and chunked ones.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { Http1Framing } from "../../src/server/rate_limit/http1_framing.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** Feeds `bytes` in pieces of `step`; the byte offsets after which a message ended (`i` for interim). */
function ends(f: Http1Framing, bytes: Uint8Array, step: number): string[] {
  const out: string[] = [];
  let offset = 0;
  for (let at = 0; at < bytes.length; at += step) {
    let rest = bytes.subarray(at, Math.min(at + step, bytes.length));
    while (rest.length) {
      const t = f.take(rest);
      offset += t.n;
      rest = rest.subarray(t.n);
      if (t.ended) out.push(`${offset}${t.ended.interim ? "i" : ""}`);
    }
  }
  return out;
}

const REQUESTS = "GET / HTTP/1.1\r\nhost: x\r\n\r\n" + // 27
  "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + // +44 = 71
  "\r\nPUT /b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n" + // +72 = 143
  "GET /c HTTP/1.1\n\n"; // +17 = 160

Deno.test("framing: pipelined requests end where they end, whole or a byte at a time", () => {
  for (const step of [1, 2, 7, 1000]) {
    const f = new Http1Framing("request");
    assertEquals(ends(f, enc(REQUESTS), step), ["27", "71", "143", "160"], `step ${step}`);
    assertEquals(f.inMessage, false);
    assertEquals(f.error, undefined);
  }
});

Deno.test("framing: a request under way is in a message; a bad one stops the framing", () => {
  const f = new Http1Framing("request");
  f.take(enc("GET / HT"));
  assert(f.inMessage);
  const bad = new Http1Framing("request");
  ends(bad, enc("POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n"), 1000);
  assert(bad.opaque);
  assertEquals(bad.error, "bad Content-Length");
});

Deno.test("framing: answers to HEAD, 1xx, 204, chunked and Content-Length ones", () => {
  let method = "GET";
  const f = new Http1Framing("response", () => method);
  const answers = "HTTP/1.1 100 Continue\r\n\r\n" + // 25 interim
    "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc" + // +41 = 66
    "HTTP/1.1 204 No Content\r\n\r\n" + // +27 = 93
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"; // +59 = 152
  for (const step of [1, 1000]) {
    assertEquals(ends(f, enc(answers), step), ["25i", "66", "93", "152"], `step ${step}`);
  }
  method = "HEAD";
  assertEquals(ends(f, enc("HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"), 1000), ["39"]);
  method = "GET";
  ends(f, enc("HTTP/1.1 101 Switching Protocols\r\n\r\n"), 1000);
  assert(f.opaque);
});

Deno.test("framing: what the server takes is followed: token methods, lengths with leading zeros", () => {
  // Each was a framing error before (review2 S1): the connection went unheld.
  const cases = [
    "get /1 HTTP/1.1\r\nhost: x\r\n\r\n",
    "M-SEARCH * HTTP/1.1\r\nhost: x\r\n\r\n",
    "POST / HTTP/1.1\r\ncontent-length: 0000000000000003\r\n\r\nabc",
    "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n00000000000000003\r\nabc\r\n0\r\n\r\n",
  ];
  for (const request of cases) {
    for (const step of [1, 1000]) {
      const f = new Http1Framing("request");
      const text = request + "GET /next HTTP/1.1\r\n\r\n";
      assertEquals(ends(f, enc(text), step), [`${request.length}`, `${text.length}`], request);
      assertEquals(f.error, undefined, request);
    }
  }
});

Deno.test("framing: chunk lines ended by a bare LF, and lengths past 2^53 - 1, are not followed", () => {
  // The server never ends a bare-LF chunked body: taken as ended, it escaped
  // the request deadline (review2 N1).
  for (
    const [request, error] of [
      [
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\nabc\n0\n\n",
        "a chunk line not ended by CRLF",
      ],
      [
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
        "a chunk line not ended by CRLF",
      ],
      [
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\n",
        "a chunk line not ended by CRLF",
      ],
      ["POST / HTTP/1.1\r\ncontent-length: 9007199254740993\r\n\r\n", "bad Content-Length"],
      ["POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n20000000000000\r\n", "bad chunk size"],
    ]
  ) {
    const f = new Http1Framing("request");
    assertEquals(ends(f, enc(request), 1000), [], request);
    assert(f.opaque, request);
    assertEquals(f.error, error, request);
  }
});

Deno.test("framing: a stray CRLF between requests begins none; a stream of blank lines does", () => {
  const f = new Http1Framing("request");
  const post = enc("POST /p HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc");
  assertEquals(f.take(post).ended, { interim: false });
  // RFC 9112 §2.2: a legacy client's extra CRLF after a body.
  const stray = f.take(enc("\r\n"));
  assertEquals([stray.n, stray.began, f.inMessage], [2, false, false]);
  // The next request still begins and ends where it does.
  assertEquals(ends(f, enc("GET / HTTP/1.1\r\n\r\n"), 1000), ["18"]);
  // Past two CRLFs, blank lines begin a request (the front's deadline then runs).
  const many = f.take(enc("\r\n\r\n\r\n"));
  assertEquals([many.began, f.inMessage], [true, true]);
});
