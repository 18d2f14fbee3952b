/**
 * PROXY protocol v2 through a real HAProxy (`send-proxy-v2`) to auth
 * processes started with `--proxy-protocol-from 127.0.0.1`: audit events
 * record the client's own address and port, not HAProxy's; joins work
 * through the balancer; a connection from the balancer's address without
 * the header is dropped. Plus the header parser on its own.
 *
 * @module
 */
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { listAudit } from "../../src/server/audit.ts";
import { parseProxyV2, PROXY_V2_SIGNATURE } from "../../src/server/proxy_protocol.ts";
import { assert, assertEquals } from "../_assert.ts";
import { putBot, putToken, TestBot } from "../server/_join_fixture.ts";
import {
  freshConnectionFetch,
  haMissing,
  harnessOf,
  hostCaPem,
  startHaCluster,
} from "./_cluster.ts";
import { postgresMissing } from "./_postgres.ts";
import { ignoreUnless } from "../_tools.ts";

function header(cmd: number, fam: number, addr: number[]): Uint8Array {
  return Uint8Array.from([
    ...PROXY_V2_SIGNATURE,
    0x20 | cmd,
    fam,
    addr.length >> 8,
    addr.length & 0xff,
    ...addr,
  ]);
}

Deno.test("PROXY v2 parser: IPv4, IPv6, LOCAL, partial and invalid headers", () => {
  const v4 = header(1, 0x11, [192, 0, 2, 7, 10, 0, 0, 1, 0x1f, 0x90, 0x01, 0xbb]);
  assertEquals(parseProxyV2(v4), {
    command: "proxy",
    source: { host: "192.0.2.7", port: 8080 },
    length: 28,
  });
  const v6src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const v6 = header(1, 0x21, [...v6src, ...Array(16).fill(0), 0, 80, 1, 187]);
  assertEquals(parseProxyV2(v6), {
    command: "proxy",
    source: { host: "2001:db8::1", port: 80 },
    length: 52,
  });
  assertEquals(parseProxyV2(header(0, 0x00, [])), { command: "local", length: 16 });
  assertEquals(parseProxyV2(v4.subarray(0, 20)), null);
  assertEquals(parseProxyV2(v4.subarray(0, 5)), null);
  for (
    const bad of [
      new TextEncoder().encode("\x16\x03\x01 TLS hello"),
      Uint8Array.from([...v4.subarray(0, 12), 0x11, 0x11, 0, 0]), // version 1
      Uint8Array.from([...v4.subarray(0, 12), 0x2f, 0x11, 0, 0]), // unknown command
      Uint8Array.from([...v4.subarray(0, 12), 0x21, 0x11, 0xff, 0xff]), // too long
    ]
  ) {
    let threw = false;
    try {
      parseProxyV2(bad);
    } catch {
      threw = true;
    }
    assert(threw, `accepted ${[...bad.subarray(0, 16)]}`);
  }
});

Deno.test({
  name: "HA: PROXY protocol v2 from HAProxy gives audit events the client's address",
  ignore: ignoreUnless("HA tests", haMissing(postgresMissing)),
  sanitizeResources: false,
  async fn(t) {
    await using c = await startHaCluster({ instances: 2, proxyProtocol: true });
    const pem = hostCaPem(c);

    await t.step("a join through HAProxy works", async () => {
      await putBot(c.ctx, "b1");
      const bot = new TestBot(harnessOf(c), "t1");
      const pub = await bot.keys.add("EdDSA");
      await putToken(c.ctx, "t1", { botName: "b1", limit: 10, initialPublicKey: pub });
      await bot.join({ fetch: freshConnectionFetch(pem) });
      await bot.join({ fetch: freshConnectionFetch(pem) });
    });

    await t.step("the audit event names the client's own address and port", async () => {
      const [lbHost, lbPort] = c.address.split(":");
      const tcp = await Deno.connect({ hostname: lbHost, port: Number(lbPort) });
      const clientPort = (tcp.localAddr as Deno.NetAddr).port;
      const tls = await Deno.startTls(tcp, { hostname: "127.0.0.1", caCerts: [pem] });
      const body = JSON.stringify({
        token_name: "no-such-token",
        public_tls_key: await exportSpkiPem((await generateKeyPair("ES256")).publicKey),
        public_ssh_key: await toAuthorizedKey((await generateKeyPair("EdDSA")).publicKey),
      });
      await tls.write(new TextEncoder().encode(
        `POST /v1/join/bound-keypair/begin HTTP/1.1\r\nHost: ${c.address}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      ));
      const answer = new TextDecoder().decode(
        await new Response(tls.readable).arrayBuffer(),
      );
      assert(/^HTTP\/1\.1 4\d\d/.test(answer), answer.slice(0, 200));
      const events = (await listAudit(c.ctx, { type: "join.failed", limit: 20 })).items;
      const addrs = events.map((e) => e.connection?.remote_addr);
      assert(addrs.includes(`127.0.0.1:${clientPort}`), `client port ${clientPort}: ${addrs}`);
    });

    await t.step(
      "a connection from the balancer's address without the header is dropped",
      async () => {
        const direct = c.instances[0].proc.url;
        const client = Deno.createHttpClient({ caCerts: [pem] });
        try {
          // Bounded: a front that stopped accepting must fail this step, not hang the suite.
          const signal = AbortSignal.timeout(20_000);
          const r = await fetch(`${direct}/v1/ping`, { client, signal }).then(
            (res) => res.body?.cancel().then(() => res.status),
            () => signal.aborted ? "timed out" : "refused",
          );
          assertEquals(r, "refused");
        } finally {
          client.close();
        }
      },
    );
  },
});
