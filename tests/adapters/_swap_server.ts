/**
 * A child process for tls_swap_test.ts: serves `{"ok":true}` over HTTPS with
 * {@linkcode serveService} (the auth service's public server), prints its
 * URL, then swaps between the certificates given as arguments once per byte
 * read on stdin, answering each swap with one byte when it is done.
 *
 * Arguments: CERT1 KEY1 CERT2 KEY2 (PEM files), and the socket directory of
 * the server behind the front (the test removes it: this process is killed).
 *
 * @module
 */
import { serveService } from "../../runtime-adapters/deno/serve.ts";
import { silentLogger } from "../../src/util/log.ts";

const [c1, k1, c2, k2, socketDir] = Deno.args;
const pairs = [
  { cert: Deno.readTextFileSync(c1), key: Deno.readTextFileSync(k1) },
  { cert: Deno.readTextFileSync(c2), key: Deno.readTextFileSync(k2) },
];
const server = await serveService({ fetch: () => Response.json({ ok: true }) }, {
  hostname: "127.0.0.1",
  port: 0,
  tls: pairs[0],
  socketDir,
  log: silentLogger,
});
const out = new TextEncoder();
await Deno.stdout.write(out.encode(`${server.url}\n`));
let n = 0;
for await (const chunk of Deno.stdin.readable) {
  for (const _ of chunk) {
    server.swapTls(pairs[++n % 2]);
    await Deno.stdout.write(out.encode("."));
  }
}
await server.shutdown();
