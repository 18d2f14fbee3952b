/**
 * The CA pin's unverified first contact (runtime-adapters/deno/trust.ts)
 * runs `node:tls` in a child process (./first_contact_probe.ts), so a tbot
 * that onboarded by pin does not keep the Node TLS layer resident; what the
 * child saw comes back as the same answers and errors as before. Real TLS on
 * loopback; the pin policy itself is tested in ./trust_test.ts.
 */
import { fetchUnverified } from "../../runtime-adapters/deno/trust.ts";
import { fetchFailure } from "../../runtime-adapters/deno/fetch_errors.ts";
import { isKeyboundError, KeyboundError } from "../../src/errors.ts";
import { issueServerCertificate } from "../../src/server/mod.ts";
import { certificatesFromPem } from "../../src/pki/pem.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { newCluster } from "../agent/_cluster.ts";

const ROOT = new URL("../../", import.meta.url);

/** An HTTPS server on loopback with a certificate from a fresh cluster's host CA. */
async function tlsServer(handler: (req: Request) => Response) {
  const cluster = await newCluster();
  const cert = await issueServerCertificate(cluster.ctx, {
    dnsNames: [],
    ipAddresses: ["127.0.0.1"],
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: cert.certPem, key: cert.keyPem, onListen: () => {} },
    handler,
  );
  return {
    url: `https://127.0.0.1:${server.addr.port}`,
    certPem: cert.certPem,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

Deno.test("first contact: the unverified connection is made by a child process, not by tbot's", async () => {
  await using server = await tlsServer(() => Response.json({ tls_ca_certs: [], ssh_ca_keys: [] }));
  // A process without network permission: node:tls in it would be refused
  // (NotCapable); the child gets its own permission for the server only.
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { fetchUnverified } from ${
        JSON.stringify(new URL("runtime-adapters/deno/trust.ts", ROOT).href)
      };\n` +
        `const r = await fetchUnverified(Deno.args[0]);\n` +
        `console.log(JSON.stringify({ status: r.status, body: r.body, leaf: r.leafDer.length }));\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("deno.json", ROOT).pathname,
        "--no-prompt",
        "--allow-read",
        "--allow-env",
        "--allow-run",
        script,
        server.url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const seen = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(seen.status, 200);
    assertEquals(JSON.parse(seen.body), { tls_ca_certs: [], ssh_ca_keys: [] });
    assert(seen.leaf > 100, `a DER certificate: ${seen.leaf} bytes`);
  } finally {
    await Deno.remove(script);
  }
});

Deno.test("first contact: the server's certificate and answer come back byte for byte", async () => {
  const big = "x".repeat(100_000);
  await using server = await tlsServer(() => Response.json({ big }));
  const { leafDer, status, body } = await fetchUnverified(server.url);
  assertEquals(status, 200);
  assertEquals(JSON.parse(body), { big });
  assertEquals(leafDer, certificatesFromPem(server.certPem)[0]);
});

Deno.test("first contact: failures keep their codes (refused, reset before the request, too large)", async () => {
  // Nothing listens: CONNECTION_FAILED, with the cause tbot's message names.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const refused = await assertRejects(
    () => fetchUnverified(`https://127.0.0.1:${port}`),
    KeyboundError,
  );
  assert(isKeyboundError(refused, "CONNECTION_FAILED"), String(refused));
  assertEquals(
    fetchFailure(refused, `127.0.0.1:${port}`)?.message,
    `connection refused: nothing is listening at 127.0.0.1:${port}`,
  );

  // Accepted, then closed before the TLS handshake: the request was never sent.
  const closing = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closer = (async () => {
    for await (const conn of closing) conn.close();
  })();
  try {
    const reset = await assertRejects(
      () => fetchUnverified(`https://127.0.0.1:${(closing.addr as Deno.NetAddr).port}`),
      KeyboundError,
    );
    assert(isKeyboundError(reset, "CONNECTION_RESET_BEFORE_SEND"), String(reset));
  } finally {
    closing.close();
    await closer.catch(() => {});
  }

  // An answer over 256 KiB is not read to its end.
  await using server = await tlsServer(() => new Response("y".repeat(300 * 1024)));
  const large = await assertRejects(() => fetchUnverified(server.url), KeyboundError);
  assert(isKeyboundError(large, "CONNECTION_FAILED"), String(large));
  assert(large.message.endsWith("the answer is too large"), large.message);
});
