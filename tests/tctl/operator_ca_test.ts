/**
 * tctl against an auth service serving a certificate from the operator's own
 * PKI (`auth start --tls-cert-file`, a real OpenSSL CA): `--ca-path` /
 * TELEPORT_CA_PATH adds that CA to the identity file's host CAs, still
 * exclusively; bad CA files are usage errors naming the option.
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { issueServerCert } from "../_openssl_pki.ts";
import { tctl } from "./_harness.ts";

Deno.test("tctl --ca-path: trusts the operator's CA with the host CAs, nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-tctl-ca-" });
  const [pki, other] = [`${dir}/pki`, `${dir}/other`];
  await Promise.all([Deno.mkdir(pki), Deno.mkdir(other)]);
  await Promise.all([
    issueServerCert(pki, "IP:127.0.0.1,DNS:localhost"),
    issueServerCert(other, "IP:127.0.0.1,DNS:localhost"),
  ]);
  const auth = await spawnAuthService({
    dataDir: `${dir}/data`,
    args: [
      "--cluster-name",
      "op.example",
      "--tls-cert-file",
      `${pki}/server.crt`,
      "--tls-key-file",
      `${pki}/server.key`,
    ],
  });
  const status = (extra: string[], env: Record<string, string> = {}) =>
    tctl(["status", "--auth-server", auth.addr, "-i", `${dir}/data/admin-identity`, ...extra], {
      env,
    });
  const oneLine = (stderr: string) => assertEquals(stderr.trimEnd().split("\n").length, 1, stderr);
  try {
    // The host CA alone does not vouch for the operator's certificate, nor does DENO_CERT.
    for (const env of [{}, { DENO_CERT: `${pki}/ca.crt` }] as Record<string, string>[]) {
      const without = await status([], env);
      assertEquals(without.code, 1, without.stderr);
      assertStringIncludes(without.stderr, "TLS: the server's certificate is not trusted");
      assertStringIncludes(without.stderr, "--ca-path");
      oneLine(without.stderr);
    }

    const withCa = await status(["--ca-path", `${pki}/ca.crt`]);
    assertEquals(withCa.code, 0, withCa.stderr);
    assertStringIncludes(withCa.stdout, "Cluster  op.example\n");
    const viaEnv = await status([], { TELEPORT_CA_PATH: `${pki}/ca.crt` });
    assertEquals(viaEnv.code, 0, viaEnv.stderr);

    // Another CA (DENO_CERT naming the right one changes nothing: exclusive).
    const unrelated = await status(["--ca-path", `${other}/ca.crt`], {
      DENO_CERT: `${pki}/ca.crt`,
    });
    assertEquals(unrelated.code, 1, unrelated.stderr);
    assertStringIncludes(unrelated.stderr, "TLS: the server's certificate is not trusted");
    oneLine(unrelated.stderr);

    // Bad input: one line naming the option, exit code 2, nothing sent.
    await Deno.writeTextFile(`${dir}/empty.pem`, "no certificate here\n");
    await Deno.writeTextFile(
      `${dir}/junk.pem`,
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    await Deno.writeTextFile(`${dir}/unreadable.pem`, await Deno.readTextFile(`${pki}/ca.crt`));
    await Deno.chmod(`${dir}/unreadable.pem`, 0o000);
    const cases: [string[], Record<string, string>, string][] = [
      [
        ["--ca-path", `${dir}/none.pem`],
        {},
        `--ca-path: cannot read ${dir}/none.pem: no such file`,
      ],
      [["--ca-path", `${dir}/empty.pem`], {}, `--ca-path: ${dir}/empty.pem holds no valid PEM`],
      [["--ca-path", `${dir}/junk.pem`], {}, `--ca-path: ${dir}/junk.pem holds no valid PEM`],
      [[], { TELEPORT_CA_PATH: `${dir}/none.pem` }, "TELEPORT_CA_PATH: cannot read"],
      [["--ca-path", `${pki}/ca.crt`, "--insecure"], {}, "--ca-path cannot be combined with"],
    ];
    if (Deno.uid() !== 0) { // root reads a 0000 file
      cases.push([
        ["--ca-path", `${dir}/unreadable.pem`],
        {},
        `--ca-path: cannot read ${dir}/unreadable.pem: permission denied`,
      ]);
    }
    for (const [args, env, message] of cases) {
      const bad = await status(args, env);
      assertEquals(bad.code, 2, `${args.join(" ")}: ${bad.stderr}`);
      assertStringIncludes(bad.stderr, `tctl: error [BAD_PARAMETER]: ${message}`);
      oneLine(bad.stderr);
    }
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tctl --help names --ca-path and TELEPORT_CA_PATH", async () => {
  const help = await tctl(["--help"]);
  assertEquals(help.code, 0, help.stderr);
  assertStringIncludes(help.stdout, "--ca-path FILE");
  assertStringIncludes(help.stdout, "TELEPORT_CA_PATH");
});
