/**
 * Answers through the public front (runtime-adapters/deno/tls_front.ts)
 * over real TLS on loopback: a client that sends a request and never reads
 * its large answer is cut at the answer deadline (before, only the 60 s idle
 * limit ended it, and a client taking a few bytes now and then never met
 * that); one that reads slowly but steadily takes its whole answer.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { missingTools } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { frontWith, serverPair } from "./_front.ts";
import { createLogger } from "../../src/util/log.ts";

const NEEDS_OPENSSL = missingTools("openssl");
const enc = (s: string) => new TextEncoder().encode(s);

/** Larger than what loopback's kernel buffers take from the front on the client's behalf. */
const LARGE = 32 * 1024 * 1024;

Deno.test({
  name: "front: a client that never reads its large answer is cut at the answer deadline",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const lines: string[] = [];
    const body = new Uint8Array(LARGE);
    // Shortened (the real grace is 30 s); the rate so high that the bytes the
    // kernel buffers absorbed at once give no more time.
    const { front, events, stop } = await frontWith({
      tls: { cert, key },
      answerDeadline: { graceMs: 500, minBytesPerSecond: 1e9 },
      log: createLogger({ format: "json", write: (l) => lines.push(l) }),
    }, () => new Response(body));
    const conns: Deno.TlsConn[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port: front.addr.port,
          caCerts: [ca],
        });
        conns.push(conn);
        await conn.write(enc("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
      }
      // Before the deadline nothing ended them for the idle limit (60 s).
      await waitUntil(
        () => events.filter((e) => e === "answer_deadline").length === 2,
        "both connections cut",
        { timeoutMs: 20_000 },
      );
      assertEquals(events, ["answer_deadline", "answer_deadline"]);
      // One line for the burst, naming the client, not one per connection.
      const logged = lines.filter((l) => l.includes("an answer not taken in time"));
      assertEquals(logged.length, 1, lines.join("\n"));
      assertEquals(JSON.parse(logged[0]).detail, "127.0.0.1");
      // The cut connection ends for the client too (after what its buffers hold).
      const buf = new Uint8Array(1 << 20);
      let read = 0;
      while (true) {
        const n = await conns[0].read(buf).catch(() => null);
        if (n === null) break;
        read += n;
      }
      assert(read < LARGE, `read ${read} of ${LARGE}`);
    } finally {
      for (const c of conns) c.close();
      await stop();
    }
  },
});

Deno.test({
  name: "front: a client reading its large answer slowly but steadily takes all of it",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const size = 8 * 1024 * 1024;
    const body = new Uint8Array(size);
    // A grace much shorter than the read takes (~3 s at 64 KB per 20 ms): a
    // fixed time for the whole answer would cut it; at 10 times the minimum
    // rate the reader keeps ahead of the clock.
    const { front, events, stop } = await frontWith({
      tls: { cert, key },
      answerDeadline: { graceMs: 500, minBytesPerSecond: 320 * 1024 },
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
