import { firstContactVia } from "../../runtime-adapters/deno/trust.ts";
import { learnPinnedCa, parseHttpResponse } from "../../src/agent/trust/mod.ts";
import { KeyboundError } from "../../src/errors.ts";
import { assertEquals, assertRejects } from "../_assert.ts";
import { newCluster } from "../agent/_cluster.ts";
import { issueServerCertificate } from "../../src/server/mod.ts";
import { certificatesFromPem, certificateToPem } from "../../src/pki/pem.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("trust: HTTP answers read on the unverified connection (length, chunked, close)", () => {
  assertEquals(
    parseHttpResponse(bytes("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")),
    { status: 200, body: "{}" },
  );
  assertEquals(
    parseHttpResponse(
      bytes(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n',
      ),
    ),
    { status: 200, body: '{"a":1}' },
  );
  assertEquals(parseHttpResponse(bytes("HTTP/1.0 404 Not Found\r\n\r\nnope")).status, 404);
});

// Both ways of making the first contact: a child process (the deno CLI) and
// this process (a compiled tbot, or no permission to start deno).
for (
  const [branch, fetchUnverified] of [
    ["child process", firstContactVia()],
    ["in this process", firstContactVia({ deno: null })],
  ] as const
) {
  Deno.test(`trust (${branch}): the pinned CA is learned only if its pin matches and it signed the server's certificate`, async () => {
    const cluster = await newCluster();
    const other = await newCluster("other.example.com");
    const served = await cluster.serve();
    try {
      assertEquals(
        await learnPinnedCa(served.url, [cluster.pin], fetchUnverified),
        cluster.hostCaPem,
      );
      assertEquals(
        await learnPinnedCa(
          served.url,
          [cluster.pin.toUpperCase().replace("SHA256", "sha256")],
          fetchUnverified,
        ),
        cluster.hostCaPem,
      );
      await assertRejects(
        () => learnPinnedCa(served.url, [other.pin], fetchUnverified),
        KeyboundError,
        "matches none of onboarding.ca_pins",
      );
    } finally {
      await served.stop();
    }
  });

  Deno.test(`trust (${branch}): a pinned CA that did not sign the server's certificate is refused`, async () => {
    const real = await newCluster();
    const impostor = await newCluster("impostor.example.com");
    const cert = await issueServerCertificate(impostor.ctx, {
      dnsNames: [],
      ipAddresses: ["127.0.0.1"],
    });
    // The impostor presents its own leaf but claims the real cluster's host CA.
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: cert.certPem, key: cert.keyPem, onListen: () => {} },
      () => Response.json({ tls_ca_certs: [real.hostCaPem], ssh_ca_keys: [] }),
    );
    try {
      await assertRejects(
        () => learnPinnedCa(`https://127.0.0.1:${server.addr.port}`, [real.pin], fetchUnverified),
        KeyboundError,
        "not issued by the pinned host CA",
      );
    } finally {
      await server.shutdown();
    }
  });

  Deno.test(`trust (${branch}): with two pins, the pinned CA that signed the leaf is learned whatever the order`, async () => {
    // A rotation's update_clients: the server lists [new, old] while its leaf still
    // comes from the old key, and the bot pins both.
    const old = await newCluster();
    const next = await newCluster("next.example.com");
    const cert = await issueServerCertificate(old.ctx, {
      dnsNames: [],
      ipAddresses: ["127.0.0.1"],
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: cert.certPem, key: cert.keyPem, onListen: () => {} },
      () => Response.json({ tls_ca_certs: [next.hostCaPem, old.hostCaPem], ssh_ca_keys: [] }),
    );
    try {
      assertEquals(
        await learnPinnedCa(
          `https://127.0.0.1:${server.addr.port}`,
          [old.pin, next.pin],
          fetchUnverified,
        ),
        old.hostCaPem,
      );
    } finally {
      await server.shutdown();
    }
  });

  Deno.test(`trust (${branch}): a pinned CA certificate not signed by its own key is not saved`, async () => {
    const cluster = await newCluster();
    const cert = await issueServerCertificate(cluster.ctx, {
      dnsNames: [],
      ipAddresses: ["127.0.0.1"],
    });
    // The pinned key and the real leaf, in a certificate someone on the path altered (one
    // letter of its subject, which then no longer names the leaf's issuer): the TLS
    // stack would refuse it as the trust root of every later connection.
    const der = certificatesFromPem(cluster.hostCaPem)[0];
    const name = new TextEncoder().encode("example.com");
    const at = der.findLastIndex((_, i) => name.every((b, j) => der[i + j] === b));
    if (at < 0) throw new Error("the cluster name is not in its host CA certificate");
    der[at] ^= 0x01;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: cert.certPem, key: cert.keyPem, onListen: () => {} },
      () => Response.json({ tls_ca_certs: [certificateToPem(der)], ssh_ca_keys: [] }),
    );
    try {
      await assertRejects(
        () =>
          learnPinnedCa(`https://127.0.0.1:${server.addr.port}`, [cluster.pin], fetchUnverified),
        KeyboundError,
        "not signed by its own key",
      );
    } finally {
      await server.shutdown();
    }
  });
}

// The pin's check and the cross-signed heal read certificates with the DER walk
// (src/pki/cert_fields.ts): the full X.509 parser (a CommonJS library) would stay resident
// for the daemon's life, ~1.5 MB (docs/benchmarks.md, "Session 8: tbot"). No module tbot can
// load, statically or by a literal import(), imports it.
Deno.test("trust: tbot never loads the full X.509 parser, the pin's check and the heal included", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${root}runtime-adapters/deno/entry/tbot.ts`],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph: {
    modules: { specifier: string; dependencies?: { specifier: string }[] }[];
  } = JSON.parse(new TextDecoder().decode(out.stdout));
  const specifiers = graph.modules.map((m) => m.specifier);
  // The walk sees the trust code: both modules are in the graph.
  for (const m of ["/src/agent/trust/pinned_ca.ts", "/src/agent/trust/cross_signed.ts"]) {
    assertEquals(specifiers.some((s) => s.endsWith(m)), true, m);
  }
  const importers = graph.modules
    .filter((m) => m.dependencies?.some((d) => d.specifier.endsWith("/x509_parse.ts")))
    .map((m) => m.specifier.slice(m.specifier.indexOf("/src/")));
  assertEquals(importers, []);
  assertEquals(specifiers.filter((s) => s.includes("@peculiar/asn1")), []);
});
