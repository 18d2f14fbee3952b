/**
 * What one source can hold at the public front
 * (runtime-adapters/deno/tls_front.ts), with real sockets on loopback
 * (sources 127.0.0.2 and up: all of 127/8 is loopback on Linux): a source
 * holding its cap of connections has a new one closed before TLS while
 * another source is served; behind a balancer the source is the client its
 * PROXY header names, never the balancer; at the total cap a newcomer closes
 * the oldest connection of the source holding the most; and in a real auth
 * process `--max-connections-per-source` sets the cap and a refusal moves
 * its counter on `/metrics`.
 *
 * @module
 */
import net from "node:net";
import type tls from "node:tls";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { missingTools } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { argParser } from "../../runtime-adapters/deno/arg_parser.ts";
import { authStartCommand, spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { connectionsFit, defaultMaxConnections } from "../../runtime-adapters/deno/tls_front.ts";
import { parseAuthCommandLine } from "../../src/cli/auth/command_line.ts";
import { UsageError } from "../../src/cli/flags/mod.ts";
import { PROXY_V2_SIGNATURE } from "../../src/server/proxy_protocol.ts";
import { createLogger } from "../../src/util/log.ts";
import { frontWith, get, noPrlimit, serverPair, tlsFrom } from "./_front.ts";

const NEEDS_OPENSSL = missingTools("openssl");
const NO_PRLIMIT = noPrlimit();
const NO_LOOPBACK_8 = Deno.build.os === "linux" ? undefined : "binds 127.0.0.2 (Linux)";

/**
 * A TCP connection from `from` that sends `first`; `answer` is its first
 * bytes back, or "" if it is closed without any.
 */
function plainFrom(from: string, port: number, first: Uint8Array): {
  socket: net.Socket;
  answer: Promise<string>;
} {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress: from }, () => {
    socket.write(first);
  });
  socket.on("error", () => {});
  const answer = new Promise<string>((resolve) => {
    socket.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)));
    socket.once("close", () => resolve(""));
  });
  return { socket, answer };
}

/** A v2 PROXY header (TCP over IPv4) naming `client`:4242. */
function proxyHeader(client: string): Uint8Array {
  return Uint8Array.from([
    ...PROXY_V2_SIGNATURE,
    0x21,
    0x11,
    0,
    12,
    ...client.split(".").map(Number),
    ...[127, 0, 0, 1, 0x10, 0x92, 0x01, 0xbb],
  ]);
}

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n");

Deno.test({
  name: "front: a source holding its cap of connections is refused before TLS, others are served",
  ignore: NEEDS_OPENSSL !== undefined || NO_LOOPBACK_8 !== undefined,
  async fn() {
    const lines: string[] = [];
    const { front, events, stop } = await frontWith({
      tls: await serverPair(),
      maxConnectionsPerSource: 3,
      log: createLogger({ format: "json", write: (l) => lines.push(l) }),
    });
    const held: tls.TLSSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = await tlsFrom("127.0.0.2", front.addr.port);
        assert(s !== "closed", `connection ${i + 1} of 3 served`);
        held.push(s);
      }
      // Before the cap the fourth finished its handshake like the others.
      for (let i = 0; i < 5; i++) {
        assertEquals(await tlsFrom("127.0.0.2", front.addr.port), "closed");
      }
      assertEquals(events, Array(5).fill("refused_per_source"));
      // One line for the burst, naming the source, not one per connection.
      const logged = lines.filter((l) => l.includes("holds its cap"));
      assertEquals(logged.length, 1, lines.join("\n"));
      assertEquals(JSON.parse(logged[0]).detail, "127.0.0.2");
      assertEquals(await get("127.0.0.3", front.addr.port), "HTTP/1.1 200 OK");
      // A slot given back is a slot again.
      const gone = new Promise((r) => held[0].once("close", r));
      held.shift()!.destroy();
      await gone;
      await waitUntil(async () => await get("127.0.0.2", front.addr.port) !== "", "a slot back");
    } finally {
      for (const s of held) s.destroy();
      await stop();
    }
  },
});

Deno.test({
  name: "front: a source opening connections faster than its rate is refused before TLS",
  ignore: NEEDS_OPENSSL !== undefined || NO_LOOPBACK_8 !== undefined,
  async fn() {
    const lines: string[] = [];
    // The buckets' clock stands still unless moved: no refill while the test runs slowly.
    let now = 0;
    // 2 a second: 4 at once (two seconds' worth), then one every 500 ms.
    const { front, events, stop } = await frontWith({
      tls: await serverPair(),
      maxConnectionRatePerSource: 2,
      clock: () => now,
      log: createLogger({ format: "json", write: (l) => lines.push(l) }),
    });
    try {
      // Closed by the client at once: the source's cap (512) is never near.
      for (let i = 0; i < 4; i++) {
        const s = await tlsFrom("127.0.0.2", front.addr.port);
        assert(s !== "closed", `connection ${i + 1} of 4 served`);
        s.destroy();
      }
      // The burst is spent: closed before the handshake. Before the limit, set up.
      for (let i = 0; i < 3; i++) {
        assertEquals(await tlsFrom("127.0.0.2", front.addr.port), "closed");
      }
      assertEquals(events, Array(3).fill("refused_source_rate"));
      const logged = lines.filter((l) => l.includes("faster than its rate"));
      assertEquals(logged.length, 1, lines.join("\n"));
      assertEquals(JSON.parse(logged[0]).detail, "127.0.0.2");
      // Another source has its own bucket.
      assertEquals(await get("127.0.0.3", front.addr.port), "HTTP/1.1 200 OK");
      // 499 ms on, still no token; 500 ms on, one: the source is served again.
      now += 499;
      assertEquals(await tlsFrom("127.0.0.2", front.addr.port), "closed");
      now += 1;
      assertEquals(await get("127.0.0.2", front.addr.port), "HTTP/1.1 200 OK");
    } finally {
      await stop();
    }
  },
});

Deno.test({
  name: "front: behind a balancer the connection rate counts the client its PROXY header names",
  ignore: NO_LOOPBACK_8 !== undefined,
  async fn() {
    const { front, events, stop } = await frontWith({
      balancers: new Set(["127.0.0.1"]),
      maxConnectionRatePerSource: 1,
      clock: () => 0,
    });
    const open: net.Socket[] = [];
    const through = async (client: string) => {
      const c = plainFrom(
        "127.0.0.1",
        front.addr.port,
        new Uint8Array([...proxyHeader(client), ...REQUEST]),
      );
      open.push(c.socket);
      return await c.answer;
    };
    try {
      // 1 a second, 2 at once, for 192.0.2.7; the third is closed unanswered.
      for (let i = 0; i < 2; i++) {
        assert((await through("192.0.2.7")).startsWith("HTTP/1.1 200"), `${i + 1} of 2 served`);
      }
      assertEquals(await through("192.0.2.7"), "");
      assertEquals(events, ["refused_source_rate"]);
      // The balancer itself is no source: another client through it is served.
      assert((await through("192.0.2.8")).startsWith("HTTP/1.1 200"), "192.0.2.8 served");
    } finally {
      for (const s of open) s.destroy();
      await stop();
    }
  },
});

Deno.test({
  name: "front: one source may have as many connections in setup at once as its cap allows",
  ignore: NEEDS_OPENSSL !== undefined || NO_LOOPBACK_8 !== undefined,
  async fn() {
    // The default caps: hundreds of bots behind one NAT address, starting at once.
    const { front, events, stop } = await frontWith({ tls: await serverPair() });
    const waiting: net.Socket[] = [];
    let served: tls.TLSSocket | "closed" = "closed";
    try {
      // 100 connections from one source, accepted in connect order, still
      // before their ClientHello: in setup when the next one is accepted.
      for (let i = 0; i < 100; i++) {
        const s = net.connect({
          host: "127.0.0.1",
          port: front.addr.port,
          localAddress: "127.0.0.2",
        });
        s.on("error", () => {});
        waiting.push(s);
        await new Promise((r) => s.once("connect", r));
      }
      // Before: at most 64 in setup per source; this one was closed at its accept.
      served = await tlsFrom("127.0.0.2", front.addr.port);
      assert(served !== "closed", "the 101st handshake finished");
      assertEquals(events, []);
    } finally {
      for (const s of waiting) s.destroy();
      if (served !== "closed") served.destroy();
      await stop();
    }
  },
});

Deno.test({
  name: "front: behind a balancer the cap counts the client its PROXY header names",
  ignore: NO_LOOPBACK_8 !== undefined,
  async fn() {
    const { front, events, stop } = await frontWith({
      balancers: new Set(["127.0.0.1"]),
      maxConnectionsPerSource: 2,
    });
    const open: net.Socket[] = [];
    try {
      // Two requests for 192.0.2.7 through the balancer, kept alive (answered, not closed).
      for (let i = 0; i < 2; i++) {
        const c = plainFrom(
          "127.0.0.1",
          front.addr.port,
          new Uint8Array([
            ...proxyHeader("192.0.2.7"),
            ...REQUEST,
          ]),
        );
        open.push(c.socket);
        assert((await c.answer).startsWith("HTTP/1.1 200"), `request ${i + 1} of 2 served`);
      }
      // A third for 192.0.2.7 is closed unanswered; one for 192.0.2.8, from
      // the same balancer, is served: the balancer itself is no source.
      const third = plainFrom(
        "127.0.0.1",
        front.addr.port,
        new Uint8Array([
          ...proxyHeader("192.0.2.7"),
          ...REQUEST,
        ]),
      );
      open.push(third.socket);
      // Before the cap it was answered like the others.
      assertEquals(await third.answer, "");
      assertEquals(events, ["refused_per_source"]);
      const other = plainFrom(
        "127.0.0.1",
        front.addr.port,
        new Uint8Array([
          ...proxyHeader("192.0.2.8"),
          ...REQUEST,
        ]),
      );
      open.push(other.socket);
      assert((await other.answer).startsWith("HTTP/1.1 200"), "192.0.2.8 served");
    } finally {
      for (const s of open) s.destroy();
      await stop();
    }
  },
});

Deno.test({
  name:
    "front: behind a balancer, at the total cap, a client over its own cap closes no one else's",
  ignore: NO_LOOPBACK_8 !== undefined,
  async fn() {
    const { front, events, stop } = await frontWith({
      balancers: new Set(["127.0.0.1"]),
      maxConnectionsPerSource: 2,
      maxConnections: 4,
    });
    const port = front.addr.port;
    const open: net.Socket[] = [];
    /** A request for `client` through the balancer, kept alive: its socket and first answer. */
    const through = (client: string) => {
      const c = plainFrom("127.0.0.1", port, new Uint8Array([...proxyHeader(client), ...REQUEST]));
      open.push(c.socket);
      return c;
    };
    try {
      // L and X hold 2 each: their own caps, and 4 in all, the total cap.
      const l1 = through("192.0.2.1");
      assert((await l1.answer).startsWith("HTTP/1.1 200"), "L1 served");
      for (const client of ["192.0.2.1", "192.0.2.66", "192.0.2.66"]) {
        assert((await through(client).answer).startsWith("HTTP/1.1 200"), `${client} served`);
      }
      // X over its cap, twice: refused after its header, as a direct peer is at its accept.
      for (let i = 0; i < 2; i++) assertEquals(await through("192.0.2.66").answer, "");
      // Before the fix each try first closed L's oldest connection (the total cap is
      // decided at the accept, before the header names X): L1 gave no second answer.
      const again = new Promise<string>((resolve) => {
        if (l1.socket.closed) return resolve("");
        l1.socket.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)));
        l1.socket.once("close", () => resolve(""));
        l1.socket.write(REQUEST);
      });
      assert((await again).startsWith("HTTP/1.1 200"), "L1 still open and answered");
      assertEquals(events, ["refused_per_source", "refused_per_source"]);
      // A client under its cap still gets a slot at the total cap, after its header.
      assert((await through("192.0.2.9").answer).startsWith("HTTP/1.1 200"), "Y served");
      assertEquals(events.at(-1), "evicted_total");
    } finally {
      for (const s of open) s.destroy();
      await stop();
    }
  },
});

Deno.test({
  name: "front: a balancer's connections waiting for their header are capped apart from those held",
  ignore: NO_LOOPBACK_8 !== undefined,
  async fn() {
    const { front, events, stop } = await frontWith({
      balancers: new Set(["127.0.0.1"]),
      maxConnections: 2,
      setupTimeoutMs: 120_000,
    });
    const port = front.addr.port;
    const open: net.Socket[] = [];
    try {
      // Two connections from the balancer that send nothing: as many as may wait (at most the total cap).
      for (let i = 0; i < 2; i++) {
        const s = net.connect({ host: "127.0.0.1", port });
        s.on("error", () => {});
        open.push(s);
        await new Promise((r) => s.once("connect", r));
      }
      const third = plainFrom("127.0.0.1", port, proxyHeader("192.0.2.7"));
      open.push(third.socket);
      assertEquals(await third.answer, "");
      assertEquals(events, ["refused_awaiting_header"]);
      // A direct peer is not locked out by them: they hold no slot of the total yet.
      const direct = plainFrom("127.0.0.2", port, REQUEST);
      open.push(direct.socket);
      assert((await direct.answer).startsWith("HTTP/1.1 200"), "a direct peer served");
      assertEquals(events, ["refused_awaiting_header"]);
    } finally {
      for (const s of open) s.destroy();
      await stop();
    }
  },
});

Deno.test({
  name: "front: behind a balancer, at the setup total, the client with most in setup loses one",
  ignore: NEEDS_OPENSSL !== undefined || NO_LOOPBACK_8 !== undefined,
  async fn() {
    const { front, events, stop } = await frontWith({
      tls: await serverPair(),
      balancers: new Set(["127.0.0.1"]),
      setupMax: { total: 4 },
    });
    const port = front.addr.port;
    const closed: string[] = [];
    const open: net.Socket[] = [];
    /** A connection whose header names `client`, then nothing: in its handshake. */
    const waiting = async (client: string) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => s.write(proxyHeader(client)));
      s.on("error", () => {});
      s.on("close", () => closed.push(client));
      open.push(s);
      await new Promise((r) => s.once("connect", r));
    };
    try {
      // B first, then A twice.
      await waiting("192.0.2.2");
      await waiting("192.0.2.1");
      await waiting("192.0.2.1");
      // A whole exchange, for ordering: their headers are read by its end.
      assertEquals(await get("127.0.0.2", port), "HTTP/1.1 200 OK");
      // A once more: 4 in setup, the total.
      await waiting("192.0.2.1");
      assertEquals(await get("127.0.0.3", port), "HTTP/1.1 200 OK");
      await waitUntil(() => closed.length > 0, "a connection in setup closed");
      // Before: all four counted as the balancer's, and the oldest, B's, went.
      assertEquals(closed, ["192.0.2.1"]);
      assert(events.includes("evicted_setup"), events.join());
    } finally {
      for (const s of open) s.destroy();
      await stop();
    }
  },
});

Deno.test({
  name: "front: at the total cap a newcomer closes the oldest connection of the largest source",
  ignore: NEEDS_OPENSSL !== undefined || NO_LOOPBACK_8 !== undefined,
  async fn() {
    const { front, events, stop } = await frontWith({ tls: await serverPair(), maxConnections: 4 });
    const held: tls.TLSSocket[] = [];
    const closedFrom: string[] = [];
    try {
      for (const from of ["127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"]) {
        const s = await tlsFrom(from, front.addr.port);
        assert(s !== "closed", `connection from ${from} served`);
        s.on("close", () => closedFrom.push(from));
        held.push(s);
      }
      // Before the cap nothing was closed; refusing the newcomer instead
      // would let a few sources lock every other client out.
      assertEquals(await get("127.0.0.4", front.addr.port), "HTTP/1.1 200 OK");
      await waitUntil(() => closedFrom.length > 0, "a connection of 127.0.0.2 closed");
      assertEquals(closedFrom, ["127.0.0.2"]);
      assertEquals(events, ["evicted_total"]);
    } finally {
      for (const s of held) s.destroy();
      await stop();
    }
  },
});

Deno.test("front: the default total cap leaves descriptors for the rest of the process", () => {
  // 3 descriptors a connection, 128 kept (a quarter of a small limit).
  assertEquals(defaultMaxConnections(1024), 298);
  assertEquals(defaultMaxConnections(64), 16);
  assertEquals(defaultMaxConnections(1_048_576), 4096);
  assertEquals(defaultMaxConnections(undefined), 4096);
  // What an explicit --max-connections may reach: the fit, above 4096 too.
  assertEquals(connectionsFit(1024), 298);
  assertEquals(connectionsFit(1_048_576), 349_482);
  // Behind a balancer, an eighth of the limit, at most 1024, kept for
  // connections waiting for their PROXY header (review3 N2: outside the fit before).
  assertEquals(defaultMaxConnections(1024, true), 256);
  assertEquals(defaultMaxConnections(256, true), 53);
  assertEquals(connectionsFit(1024, true), 256);
  assertEquals(connectionsFit(1_048_576, true), 349_141);
});

Deno.test("auth start: the front's connection caps and rate take positive integers", () => {
  const parse = (...flags: string[]) =>
    parseAuthCommandLine(["start", "--data-dir", "/tmp/x", ...flags], argParser, () => "h");
  const line = parse(
    "--max-connections-per-source",
    "900",
    "--max-connections",
    "20000",
    "--max-connection-rate-per-source",
    "50",
  );
  assert(line.kind === "start");
  assertEquals(line.config.connections, {
    maxConnectionsPerSource: 900,
    maxConnections: 20000,
    maxConnectionRatePerSource: 50,
  });
  const none = parse();
  assert(none.kind === "start");
  assertEquals(none.config.connections, {});
  const big = parse("--max-connections", "9007199254740991");
  assert(big.kind === "start");
  assertEquals(big.config.connections.maxConnections, Number.MAX_SAFE_INTEGER);
  // Beyond 2^53 - 1 a number is rounded: 1e23, or 9007199254740992 for …993.
  for (const bad of ["0", "-1", "1.5", "many", "", "99999999999999999999999", "9007199254740993"]) {
    assertThrows(() => parse("--max-connections-per-source", bad), UsageError);
    assertThrows(() => parse("--max-connections", bad), UsageError);
    assertThrows(() => parse("--max-connection-rate-per-source", bad), UsageError);
  }
  // One line naming the flag.
  assertThrows(
    () => parse("--max-connection-rate-per-source", "0"),
    UsageError,
    '--max-connection-rate-per-source: expected a whole number from 1 to 9007199254740991, got "0"',
  );
});

Deno.test({
  name: "auth start: a --max-connections the descriptor limit cannot hold is refused in one line",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "kb-front-limits-nofile-" });
    try {
      // 256 descriptors hold 64 connections (3 each, 64 kept for the rest).
      const child = new Deno.Command("prlimit", {
        args: ["--nofile=256", ...authStartCommand({ dataDir, args: ["--max-connections", "65"] })],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Its first line: the refusal, or (before) the service starting, its
      // front out of descriptors before its cap; then it is stopped.
      const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let stderr = "";
      while (!stderr.includes("\n")) {
        const { value, done } = await lines.read();
        if (done) break;
        stderr += value;
      }
      const refused = stderr.includes(
        "--max-connections 65: the descriptor limit holds at most 64",
      );
      if (!refused) child.kill();
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        stderr += value;
      }
      const { code } = await child.status;
      assert(refused, stderr);
      assertEquals(code, 2, stderr);
      assertEquals(stderr.trim().split("\n").length, 1, stderr);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "auth process: a refusal over --max-connections-per-source moves its counter on /metrics",
  ignore: NO_LOOPBACK_8 !== undefined,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "kb-front-limits-auth-" });
    const auth = await spawnAuthService({
      dataDir,
      args: ["--max-connections-per-source", "2", "--diag-addr", "127.0.0.1:0"],
    });
    const held: tls.TLSSocket[] = [];
    try {
      const port = Number(new URL(auth.url).port);
      const refused = async () => {
        const text = await (await fetch(`${auth.diagUrl}/metrics`)).text();
        return /^keybound_auth_front_connections_refused_total\{reason="per_source"\} (\d+)$/m
          .exec(text)?.[1];
      };
      assertEquals(await refused(), "0");
      for (let i = 0; i < 2; i++) {
        const s = await tlsFrom("127.0.0.2", port);
        assert(s !== "closed", `connection ${i + 1} of 2 served`);
        held.push(s);
      }
      assertEquals(await tlsFrom("127.0.0.2", port), "closed");
      assertEquals(await refused(), "1");
    } finally {
      for (const s of held) s.destroy();
      await auth.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
