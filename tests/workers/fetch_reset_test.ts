/**
 * Why the Worker bot does not resend after a connection reset (docs/security.md,
 * "The certificate swap keeps the listener"): workerd's `fetch` reports a
 * reset during the TLS handshake, before any byte of the request, exactly
 * like a reset after the server read the whole request, and like the reset
 * of a reused keep-alive connection — so a reset before the request cannot
 * be told apart, and resending on it would resend requests the server may
 * have received. Should a workerd release tell them apart, this fails and
 * the Worker's fetch can classify the first like the Deno adapters do.
 * Real workerd (miniflare), a real node:net server on loopback.
 *
 * @module
 */
import { createServer, type Socket } from "node:net";
import { assertEquals } from "../_assert.ts";
import { bundle, startWorker } from "./_harness.ts";
import type { Outcome } from "./fetch_error_worker.ts";

type Mode = "reset after the ClientHello" | "reset after the request" | "reset a reused connection";

/** A server that answers `ok` and resets per `mode`; `requests` counts the requests it read. */
async function resettingServer(mode: Mode) {
  let connections = 0;
  const seen = { requests: 0 };
  const server = createServer((socket: Socket) => {
    socket.on("error", () => {});
    const id = ++connections;
    let buffered = "";
    let onThis = 0;
    socket.on("data", (chunk: Uint8Array) => {
      if (mode === "reset after the ClientHello") return void socket.resetAndDestroy();
      buffered += new TextDecoder("latin1").decode(chunk);
      // Each request: headers, then the fixed 10-byte body.
      for (let end; (end = buffered.indexOf("\r\n\r\n")) >= 0 && buffered.length >= end + 14;) {
        buffered = buffered.slice(end + 14);
        seen.requests++;
        onThis++;
        if (mode === "reset after the request" || (id === 1 && onThis === 2)) {
          return void socket.resetAndDestroy();
        }
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

Deno.test({
  name: "workerd fetch: a reset before the request looks exactly like one after it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using script = await bundle(new URL("./fetch_error_worker.ts", import.meta.url));
    await using worker = await startWorker(script.path);
    const run = async (mode: Mode, scheme: string, n: number) => {
      const server = await resettingServer(mode);
      try {
        const url = `${scheme}://127.0.0.1:${server.port}/v1/join/bound-keypair/continue`;
        const res = await worker.fetch(`/?n=${n}&url=${encodeURIComponent(url)}`);
        return { outcomes: await res.json() as Outcome[], requests: server.seen.requests };
      } finally {
        await server.close();
      }
    };
    // TLS: the server resets once the ClientHello arrives — no request was written.
    const before = await run("reset after the ClientHello", "https", 1);
    // The server read the whole request (it may have acted on it), then reset.
    const after = await run("reset after the request", "http", 1);
    // Request 2 goes out on request 1's kept-alive connection, which the server resets once
    // it has read it; request 3 then opens a new connection.
    const reused = await run("reset a reused connection", "http", 3);

    assertEquals(before.requests, 0);
    assertEquals(after.requests, 1);
    assertEquals(reused.requests, 3, "workerd did not send request 2 again by itself");
    assertEquals(reused.outcomes[0], { status: 200 });
    assertEquals(reused.outcomes[2], { status: 200 });
    const lost = before.outcomes[0];
    assertEquals(after.outcomes[0], lost, "a reset after the request reads the same");
    assertEquals(reused.outcomes[1], lost, "a reset reused connection reads the same");
    // What workerd says for all three (1.20260730): nothing in it names the moment.
    assertEquals(lost, {
      error: {
        name: "Error",
        message: "Network connection lost.",
        props: { remote: true, retryable: true },
        cause: null,
      },
    });
  },
});
