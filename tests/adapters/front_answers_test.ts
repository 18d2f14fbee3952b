/**
 * Answers through the public front (runtime-adapters/deno/tls_front.ts)
 * over real TLS on loopback: a client that sends a request and never reads
 * its large answer is cut at the answer deadline, at the real minimum rate
 * (before, only the 60 s idle limit ended it, and a client taking a few
 * bytes now and then never met that); one that reads slowly but steadily
 * takes its whole answer; a second burst of cuts is logged again; a new
 * answer on a connection is held to its own clock.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { missingTools } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { frontWith, get, serverPair } from "./_front.ts";
import { ANSWER_MIN_BYTES_PER_S } from "../../runtime-adapters/deno/tls_front.ts";
import { createLogger } from "../../src/util/log.ts";

const NEEDS_OPENSSL = missingTools("openssl");
const enc = (s: string) => new TextEncoder().encode(s);

/** Larger than what loopback's kernel buffers take from the front on the client's behalf. */
const LARGE = 32 * 1024 * 1024;

/** A TLS connection to the front that asks for `path` and reads nothing. */
async function stall(port: number, ca: string, path = "/"): Promise<Deno.TlsConn> {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
  await conn.write(enc(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`));
  return conn;
}

/** Bytes read from `conn` until it ends (or fails). */
async function readAll(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(1 << 20);
  let read = 0;
  while (true) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return read;
    read += n;
  }
}

const cuts = (events: string[]) => events.filter((e) => e === "answer_deadline").length;

Deno.test({
  name: "front: a client that never reads its large answer is cut at the answer deadline",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const lines: string[] = [];
    const body = new Uint8Array(LARGE);
    // The grace shortened (the real one is 30 s), the real minimum rate: the
    // several MB the kernel buffers took at once used to count as taken
    // (30 s + 3.9 MB / 8 KB/s, ~8 min, review-front S3); only what leaves
    // them once they are full counts now.
    const { front, events, stop } = await frontWith({
      tls: { cert, key },
      answerDeadline: { graceMs: 500, minBytesPerSecond: ANSWER_MIN_BYTES_PER_S },
      log: createLogger({ format: "json", write: (l) => lines.push(l) }),
    }, () => new Response(body));
    const conns: Deno.TlsConn[] = [];
    try {
      for (let i = 0; i < 2; i++) conns.push(await stall(front.addr.port, ca));
      // Before the deadline nothing ended them for the idle limit (60 s).
      await waitUntil(() => cuts(events) === 2, "both connections cut", { timeoutMs: 20_000 });
      assertEquals(events, ["answer_deadline", "answer_deadline"]);
      // One line for the burst, naming the client, not one per connection.
      const logged = lines.filter((l) => l.includes("an answer not taken in time"));
      assertEquals(logged.length, 1, lines.join("\n"));
      assertEquals(JSON.parse(logged[0]).detail, "127.0.0.1");
      // Told apart from a request-deadline cut by a stable field, not by the prose.
      assertEquals(JSON.parse(logged[0]).reason, "answer_deadline");
      // The cut connection ends for the client too (after what its buffers hold).
      const read = await readAll(conns[0]);
      assert(read < LARGE, `read ${read} of ${LARGE}`);
    } finally {
      for (const c of conns) c.close();
      await stop();
    }
  },
});

Deno.test({
  name: "front: a second burst of answer-deadline cuts after a quiet spell is logged again",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const lines: string[] = [];
    const body = new Uint8Array(LARGE);
    // The burst log's quiet spell (5 s) on a clock the test moves.
    let now = 0;
    const { front, events, stop } = await frontWith({
      tls: { cert, key },
      answerDeadline: { graceMs: 500, minBytesPerSecond: ANSWER_MIN_BYTES_PER_S },
      clock: () => now,
      log: createLogger({ format: "json", write: (l) => lines.push(l) }),
    }, (r) => new URL(r.url).pathname === "/large" ? new Response(body) : new Response("ok"));
    const conns: Deno.TlsConn[] = [];
    const first = "closed connections at the public front: an answer not taken in time";
    const firsts = () => lines.filter((l) => JSON.parse(l).msg === first).length;
    try {
      conns.push(await stall(front.addr.port, ca, "/large"));
      await waitUntil(() => cuts(events) === 1, "the first cut", { timeoutMs: 20_000 });
      assertEquals(firsts(), 1, lines.join("\n"));
      // Quiet for longer than the spell, then an answer taken: the burst is over.
      now += 5_001;
      assertEquals(await get("127.0.0.1", front.addr.port), "HTTP/1.1 200 OK");
      const over = (l: string) => JSON.parse(l).msg.startsWith(`${first}: over`);
      await waitUntil(() => lines.some(over), "the over line");
      assertEquals(JSON.parse(lines.find(over)!).reason, "answer_deadline");
      // Before: count was never reset, and this cut was not logged.
      conns.push(await stall(front.addr.port, ca, "/large"));
      await waitUntil(() => cuts(events) === 2, "the second cut", { timeoutMs: 20_000 });
      assertEquals(firsts(), 2, lines.join("\n"));
    } finally {
      for (const c of conns) c.close();
      await stop();
    }
  },
});

Deno.test({
  name: "front: a new answer's clock is checked at its own deadline, not the previous clock's",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const body = new Uint8Array(16 * 1024 * 1024);
    // The idle limit far beyond the test; the grace long enough for a
    // reader on a loaded machine to free a third of loopback's send buffer.
    const { front, events, stop } = await frontWith({
      tls: { cert, key },
      idleTimeoutMs: 600_000,
      answerDeadline: { graceMs: 2_000, minBytesPerSecond: ANSWER_MIN_BYTES_PER_S },
    }, () => new Response(body));
    const conn = await stall(front.addr.port, ca);
    try {
      // The first answer taken at ~6 MB/s, its send buffer full: the
      // clock's first check finds MBs taken and re-arms its timer minutes
      // ahead (at 8 KB/s).
      const buf = new Uint8Array(64 * 1024);
      let text = "";
      let read = 0;
      let whole = Infinity;
      while (read < whole) {
        const n = await conn.read(buf);
        assert(n !== null, `the first answer ended after ${read} bytes`);
        if (whole === Infinity) {
          text += new TextDecoder().decode(buf.subarray(0, n));
          const head = text.indexOf("\r\n\r\n");
          if (head >= 0) whole = head + 4 + body.length;
        }
        read += n;
        await new Promise((r) => setTimeout(r, 10));
      }
      assertEquals(events, []);
      // The second, never read: its clock starts anew. Before, the timer
      // armed for the first clock stayed and the cut waited for it.
      await conn.write(enc("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
      await waitUntil(() => cuts(events) === 1, "the second answer cut", { timeoutMs: 20_000 });
    } finally {
      conn.close();
      await stop();
    }
  },
});

Deno.test({
  name: "front: a client reading its large answer slowly but steadily takes all of it",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const size = 16 * 1024 * 1024;
    const body = new Uint8Array(size);
    // A grace shorter than the read takes (~5 s at 64 KB per 20 ms): a fixed
    // time for the whole answer would cut it; at 10 times the minimum rate
    // the reader keeps ahead of the clock. Long enough for a reader on a
    // loaded machine to free a third of loopback's 4 MB send buffer, after
    // which the kernel lets the front write again and the reader's progress
    // is seen.
    const { front, events, stop } = await frontWith({
      tls: { cert, key },
      answerDeadline: { graceMs: 2_000, minBytesPerSecond: 320 * 1024 },
    }, () => new Response(body));
    try {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: front.addr.port,
        caCerts: [ca],
      });
      await conn.write(enc("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
      const buf = new Uint8Array(64 * 1024);
      let read = 0;
      while (true) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        read += n;
        await new Promise((r) => setTimeout(r, 20 * n / buf.length));
      }
      conn.close();
      assert(read > size, `read ${read}, the answer is ${size} bytes and a head`);
      assertEquals(events, []);
    } finally {
      await stop();
    }
  },
});
