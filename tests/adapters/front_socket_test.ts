/**
 * The server behind the public front on a Unix socket (serve.ts's
 * serveService): in a private directory, 0700 whatever the umask, removed
 * at shutdown; each request carries its connection's token in a header the
 * front adds, which names its client to the server: a client sending the
 * header itself names no one; a request on the socket without a token the
 * front gave is refused.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { missingTools } from "../_tools.ts";
import { serverPair } from "./_front.ts";
import { serveService } from "../../runtime-adapters/deno/serve.ts";
import { FRONT_CLIENT_HEADER } from "../../runtime-adapters/deno/tls_front.ts";
import { silentLogger } from "../../src/util/log.ts";

const NEEDS_OPENSSL = missingTools("openssl");
const enc = (s: string) => new TextEncoder().encode(s);

/** Everything `conn` reads until its end. */
async function readAll(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return text;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

Deno.test({
  name: "serveService: a client's own client-token header passes for no one",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const server = await serveService({
      fetch: (_r: Request, env: { remoteAddr?: string }) => Response.json({ addr: env.remoteAddr }),
    }, {
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key },
      socketParent: parent,
      log: silentLogger,
    });
    try {
      const [dir] = [...Deno.readDirSync(parent)].map((e) => `${parent}/${e.name}`);
      assertEquals(Deno.statSync(dir).mode! & 0o777, 0o700);
      // Before the front's line and after it: a guessed token, an address, nothing.
      for (const forged of ["00112233445566778899aabbccddeeff", "192.0.2.9:1", ""]) {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port: server.addr.port,
          caCerts: [ca],
        });
        const client = `127.0.0.1:${(conn.localAddr as Deno.NetAddr).port}`;
        await conn.write(enc(
          `GET / HTTP/1.1\r\n${FRONT_CLIENT_HEADER}: ${forged}\r\nhost: x\r\n` +
            `${FRONT_CLIENT_HEADER}: ${forged}\r\nconnection: close\r\n\r\n`,
        ));
        const answer = await readAll(conn);
        conn.close();
        assert(answer.startsWith("HTTP/1.1 200"), answer);
        assertEquals(JSON.parse(answer.split("\r\n\r\n")[1]), { addr: client });
      }
      // Straight to the socket (this user may), with no line from the front.
      const direct = await Deno.connect({ transport: "unix", path: `${dir}/http.sock` });
      await direct.write(enc(
        `GET / HTTP/1.1\r\nhost: x\r\n${FRONT_CLIENT_HEADER}: x 192.0.2.9:1\r\nconnection: close\r\n\r\n`,
      ));
      const refused = await readAll(direct);
      direct.close();
      assert(refused.startsWith("HTTP/1.1 400"), refused);
    } finally {
      await server.shutdown();
    }
    // The private directory goes with the server.
    assertEquals([...Deno.readDirSync(parent)], []);
    await Deno.remove(parent);
  },
});

Deno.test({
  name: "serveService: the socket's directory is 0700 under a umask that would leave it unusable",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const source = `
import { serveService } from ${
      JSON.stringify(new URL("../../runtime-adapters/deno/serve.ts", import.meta.url).href)
    };
import { silentLogger } from ${
      JSON.stringify(new URL("../../src/util/log.ts", import.meta.url).href)
    };
const server = await serveService({ fetch: () => new Response("ok") }, {
  hostname: "127.0.0.1", port: 0, proxyFrom: ["127.0.0.2"], socketParent: ${JSON.stringify(parent)},
  log: silentLogger,
});
const [dir] = [...Deno.readDirSync(${JSON.stringify(parent)})];
const mode = Deno.statSync(${JSON.stringify(parent)} + "/" + dir.name).mode & 0o777;
const body = await (await fetch("http://127.0.0.1:" + server.addr.port + "/")).text();
console.log(JSON.stringify({ mode: mode.toString(8), body }));
await server.shutdown();
`;
    try {
      // 0277: mkdtemp's 0700 would become 0500, where no socket can be made.
      const out = await new Deno.Command("sh", {
        args: ["-c", 'umask 0277 && exec "$0" eval --ext=ts "$1"', Deno.execPath(), source],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert(out.success, new TextDecoder().decode(out.stderr));
      assertEquals(JSON.parse(text), { mode: "700", body: "ok" });
    } finally {
      await Deno.remove(parent, { recursive: true });
    }
  },
});
