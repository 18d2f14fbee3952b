/**
 * Wall time of one request on a kept-alive loopback connection, by server
 * (dev tool, not part of `deno task bench`): `Deno.serve` over plain HTTP,
 * `Deno.serve` over TLS (HTTP/1.1 and HTTP/2, as the client negotiates),
 * `node:https`'s server, and Keybound's own HTTPS path (serveService: the
 * `node:tls` front of runtime-adapters/deno/tls_front.ts before a loopback
 * `Deno.serve`), each answered with a 2 KB JSON body like a join answer; the
 * client is Deno's `fetch`, as in tbot and tctl. Keybound's path is PASS when
 * its median is within {@linkcode SLACK_MS} of the plain path's, far below
 * the ~40 ms delayed-ACK wait it had when it was `Deno.serve`'s TLS.
 *
 * Why it exists: a tbot oneshot's `begin` and `continue` each took ~50 ms on
 * an idle machine whose join p50 over plain HTTP is ~9 ms. This isolates the
 * server's TLS path from Keybound's code. A constant ~44 ms (HTTP/1.1) or
 * ~88 ms (HTTP/2) per request is Nagle's algorithm on the server's socket
 * meeting the client's delayed ACK: the response leaves in more than one
 * write and the later one waits for an ACK the client holds back ~40 ms.
 *
 * Needs `openssl` for a throwaway P-256 CA and server certificate.
 *
 * `deno run -A bench/tls_request_latency.ts [requests]`
 *
 * @module
 */
import https from "node:https";
import { serveService } from "../runtime-adapters/deno/serve.ts";
import { silentLogger } from "../src/util/log.ts";
import { issueServerCert } from "../tests/_openssl_pki.ts";

/** How much slower than plain HTTP Keybound's TLS path may be and still PASS. */
const SLACK_MS = 3;

const REQUESTS = Number(Deno.args[0] ?? 15);
const dir = await Deno.makeTempDir({ prefix: "kb-tls-latency-" });
try {
  await issueServerCert(dir, "IP:127.0.0.1");
  const ca = await Deno.readTextFile(`${dir}/ca.crt`);
  const cert = await Deno.readTextFile(`${dir}/server.crt`);
  const key = await Deno.readTextFile(`${dir}/server.key`);
  const answer = JSON.stringify({ ok: true, pad: "x".repeat(2000) });
  const body = JSON.stringify({ step: "continue", pad: "y".repeat(2500) });

  const denoServer = (tls: boolean) => {
    const s = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen() {}, ...(tls ? { cert, key } : {}) },
      async (r) => {
        await r.arrayBuffer();
        return new Response(answer, { headers: { "content-type": "application/json" } });
      },
    );
    return { port: s.addr.port, close: () => s.shutdown() };
  };
  const nodeServer = async () => {
    const s = https.createServer({ cert, key }, (req, res) => {
      req.resume();
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        res.end(answer);
      });
    });
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    const { port } = s.address() as { port: number };
    return { port, close: () => new Promise<void>((resolve) => s.close(() => resolve())) };
  };

  const keybound = async () => {
    // The socket of the server behind the front, in a private directory of its own.
    const sockets = await Deno.makeTempDir({ prefix: "kb-bench-front-" });
    const s = await serveService({
      fetch: async (r) => {
        await r.arrayBuffer();
        return new Response(answer, { headers: { "content-type": "application/json" } });
      },
    }, {
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key },
      socketDir: `${sockets}/front`,
      log: silentLogger,
    });
    return {
      port: s.addr.port,
      close: async () => {
        await s.shutdown();
        await Deno.remove(sockets, { recursive: true });
      },
    };
  };

  const cases: [
    string,
    () => Promise<{ port: number; close: () => Promise<void> }>,
    string,
    Deno.CreateHttpClientOptions,
  ][] = [
    ["Deno.serve, plain HTTP/1.1", () => Promise.resolve(denoServer(false)), "http", {}],
    ["Deno.serve, TLS, HTTP/1.1", () => Promise.resolve(denoServer(true)), "https", {
      caCerts: [ca],
      http2: false,
    }],
    ["Deno.serve, TLS, HTTP/2", () => Promise.resolve(denoServer(true)), "https", {
      caCerts: [ca],
      http1: false,
    }],
    ["node:https server, TLS, HTTP/1.1", nodeServer, "https", { caCerts: [ca] }],
    ["Keybound serveService, TLS", keybound, "https", { caCerts: [ca] }],
  ];
  let plainMedian = NaN;
  for (const [name, start, scheme, options] of cases) {
    const server = await start();
    const client = Deno.createHttpClient(options);
    const times: number[] = [];
    try {
      for (let i = 0; i < REQUESTS + 1; i++) {
        const t = performance.now();
        const r = await fetch(`${scheme}://127.0.0.1:${server.port}/`, {
          method: "POST",
          body,
          headers: { "content-type": "application/json" },
          client,
        });
        await r.text();
        // The first request also opens the connection (and the TLS handshake): left out.
        if (i > 0) times.push(performance.now() - t);
      }
    } finally {
      client.close();
      await server.close();
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    if (scheme === "http") plainMedian = median;
    const verdict = name.startsWith("Keybound")
      ? (median <= plainMedian + SLACK_MS ? "  PASS" : "  MISS") + ` (plain + ${SLACK_MS} ms)`
      : "";
    console.log(
      `${name.padEnd(34)} median ${median.toFixed(1).padStart(6)} ms` +
        `  (min ${times[0].toFixed(1)}, max ${
          times[times.length - 1].toFixed(1)
        }; ${REQUESTS} requests)${verdict}`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
