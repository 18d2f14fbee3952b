/**
 * The public front (runtime-adapters/deno/tls_front.ts) gives back what a
 * connection holds however it ends: a client that finishes its TLS
 * handshake and vanishes at once frees its socket, the loopback connection
 * and the server's side (review6 M4: three descriptors each, kept forever),
 * and a connection silent both ways past the idle limit is closed, both
 * sides (review6 S1: held for good before).
 *
 * @module
 */
import tls from "node:tls";
import { issueServerCert } from "../_openssl_pki.ts";
import { missingTools } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { serveApp } from "../../runtime-adapters/deno/serve.ts";
import { type FrontOptions, startFront } from "../../runtime-adapters/deno/tls_front.ts";
import { silentLogger } from "../../src/util/log.ts";

const NEEDS_OPENSSL = missingTools("openssl");
const NO_PROC = Deno.build.os === "linux" ? undefined : "counts descriptors in /proc/self/fd";

/** A server certificate for 127.0.0.1 and its key. */
async function pair(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kb-front-cleanup-" });
  try {
    await issueServerCert(dir, "IP:127.0.0.1");
    return {
      cert: await Deno.readTextFile(`${dir}/server.crt`),
      key: await Deno.readTextFile(`${dir}/server.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Descriptors this process holds. */
function descriptors(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** A TLS front in this process before a Deno.serve answering "ok"; `stop` ends both. */
async function frontWith(extra: Partial<FrontOptions> = {}) {
  const inner = serveApp({ fetch: () => new Response("ok") }, {
    hostname: "127.0.0.1",
    port: 0,
  });
  const front = await startFront({
    hostname: "127.0.0.1",
    port: 0,
    tls: await pair(),
    balancers: new Set(),
    target: { hostname: "127.0.0.1", port: inner.addr.port },
    log: silentLogger,
    ...extra,
  });
  return {
    front,
    async stop() {
      front.stopAccepting();
      await inner.shutdown();
      await front.drain();
    },
  };
}

Deno.test({
  name: "front: clients that vanish right after their handshake leave no descriptor behind",
  ignore: NEEDS_OPENSSL !== undefined || NO_PROC !== undefined,
  async fn() {
    const { front, stop } = await frontWith();
    try {
      const base = descriptors();
      const clients = 40;
      for (let i = 0; i < clients; i++) {
        await new Promise<void>((resolve) => {
          const s = tls.connect(
            { host: "127.0.0.1", port: front.addr.port, rejectUnauthorized: false },
            () => s.destroy(),
          );
          s.on("error", () => {});
          s.on("close", () => resolve());
        });
      }
      // Before the fix: base + 3 per client, for good (the server's side
      // waited for a request that never came, nothing ended it).
      await waitUntil(
        () => descriptors() <= base + 4,
        `descriptors back to ${base} (+4) after ${clients} vanished clients`,
        { timeoutMs: 8_000, intervalMs: 50 },
      );
    } finally {
      await stop();
    }
  },
});

Deno.test({
  name: "front: a connection silent both ways past the idle limit is closed, both sides",
  ignore: NEEDS_OPENSSL !== undefined || NO_PROC !== undefined,
  async fn() {
    // The real limit is IDLE_TIMEOUT_MS (60 s); shortened so the test waits for the close.
    const { front, stop } = await frontWith({ idleTimeoutMs: 300 });
    try {
      const base = descriptors();
      const silent: tls.TLSSocket[] = [];
      let closed = 0;
      for (let i = 0; i < 5; i++) {
        // Finished handshakes; then nothing, or half a request header.
        const s = await new Promise<tls.TLSSocket>((resolve) => {
          const s = tls.connect(
            { host: "127.0.0.1", port: front.addr.port, rejectUnauthorized: false },
            () => resolve(s),
          );
        });
        s.on("error", () => {});
        s.on("close", () => closed++);
        s.resume();
        if (i % 2) s.write("GET / HTTP/1.1\r\nhost: x\r\n");
        silent.push(s);
      }
      try {
        // Before the fix Deno.serve waited for the rest for good.
        await waitUntil(() => closed === silent.length, "the front closing the silent clients", {
          timeoutMs: 8_000,
          intervalMs: 50,
        });
        await waitUntil(
          () => descriptors() <= base + 4,
          `descriptors back to ${base} (+4) after the idle close`,
          { timeoutMs: 8_000, intervalMs: 50 },
        );
      } finally {
        for (const s of silent) s.destroy();
      }
    } finally {
      await stop();
    }
  },
});
