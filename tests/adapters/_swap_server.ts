/**
 * A child process for tls_swap_test.ts: serves `{"ok":true}` over HTTPS with
 * {@linkcode serveApp} (run it with `--unstable-net`, as the auth service
 * is, so a swap binds a second listener with SO_REUSEPORT), prints its URL,
 * then swaps between the certificates given as arguments once per byte read
 * on stdin, answering each swap with one byte when it is done.
 *
 * Arguments: CERT1 KEY1 CERT2 KEY2 (PEM files).
 *
 * @module
 */
import { serveApp } from "../../runtime-adapters/deno/serve.ts";

const [c1, k1, c2, k2] = Deno.args;
const pairs = [
  { cert: Deno.readTextFileSync(c1), key: Deno.readTextFileSync(k1) },
  { cert: Deno.readTextFileSync(c2), key: Deno.readTextFileSync(k2) },
];
const server = serveApp({ fetch: () => Response.json({ ok: true }) }, {
  hostname: "127.0.0.1",
  port: 0,
  tls: pairs[0],
});
const out = new TextEncoder();
await Deno.stdout.write(out.encode(`${server.url}\n`));
let n = 0;
for await (const chunk of Deno.stdin.readable) {
  for (const _ of chunk) {
    await server.swapTls(pairs[++n % 2]);
    await Deno.stdout.write(out.encode("."));
  }
}
await server.shutdown();
