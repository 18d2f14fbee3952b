import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "../_assert.ts";
import { algOf, keyId } from "../../src/crypto/keys.ts";
import { parseAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { ConfigError, KeyboundError } from "../../src/errors.ts";
import { NAME_OIDS, parseCertificate, spkiPin } from "../../src/pki/mod.ts";
import { bootstrapCluster, CA_VALIDITY_MS, caPin } from "../../src/server/bootstrap.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { issueAdminIdentity, issueServerCertificate } from "../../src/server/identity.ts";
import { caKey, CLUSTER_META } from "../../src/server/keys.ts";
import { MAX_NEW_CLUSTER_NAME, X509_NAME_UPPER_BOUND } from "../../src/server/rotation/material.ts";
import { rotateCa } from "../../src/server/rotation/rotate.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import type { Backend } from "../../src/storage/backend.ts";
import { createLogger, silentLogger } from "../../src/util/log.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { ignoreWithout } from "../_tools.ts";

const opts = (clusterName = "example.com") => ({
  clusterName,
  log: silentLogger,
  version: "1.2.3",
});

async function fingerprint(ctx: ServerContext) {
  return {
    host: await caPin(ctx.cas.host),
    user: await caPin(ctx.cas.user),
    hostSsh: ctx.cas.host.ssh!.publicKey,
    userSsh: ctx.cas.user.ssh!.publicKey,
    bkp: ctx.cas.boundKeypair.jwt!.map((k) => k.kid),
    jwt: ctx.cas.jwt.jwt!.map((k) => k.kid),
  };
}

async function sealOpen(a: CryptoKey, b: CryptoKey): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, a, new TextEncoder().encode("x"));
  return new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, b, ct));
}

Deno.test("first bootstrap creates every CA with the specified algorithms and subjects", async () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const ctx = await bootstrapCluster(new MemoryBackend(), { ...opts(), now: () => now });
  assertEquals(ctx.clusterName, "example.com");
  assertEquals(ctx.version, "1.2.3");
  for (const type of ["user", "host"] as const) {
    const ca = ctx.cas[type];
    assertEquals(ca.tls!.keyPair.alg, "ES256");
    assertEquals(ca.ssh!.keyPair.alg, "EdDSA");
    const cert = parseCertificate(ca.tls!.certDer);
    assert(cert.isCA, `${type} CA certificate is a CA`);
    assertEquals(cert.subject, [
      { oid: NAME_OIDS.commonName, value: "example.com" },
      { oid: NAME_OIDS.organization, value: "example.com" },
      { oid: NAME_OIDS.organizationalUnit, value: type },
    ]);
    assertEquals(cert.notAfter.getTime() - now.getTime(), CA_VALIDITY_MS);
    assertEquals((await parseAuthorizedKey(ca.ssh!.publicKey)).type, "ssh-ed25519");
  }
  assertEquals(ctx.cas.boundKeypair.jwt!.map((k) => algOf(k.keyPair.privateKey)), ["EdDSA"]);
  assertEquals(ctx.cas.jwt.jwt!.map((k) => algOf(k.keyPair.privateKey)), ["ES256"]);
  assertEquals(
    ctx.cas.boundKeypair.jwt![0].kid,
    await keyId(ctx.cas.boundKeypair.jwt![0].keyPair.publicKey),
  );
  assertNotEquals(await caPin(ctx.cas.host), await caPin(ctx.cas.user));
  assertEquals(
    await caPin(ctx.cas.host),
    await spkiPin(parseCertificate(ctx.cas.host.tls!.certDer)),
  );
});

Deno.test("loaded private keys are non-extractable", async () => {
  const backend = new MemoryBackend();
  await bootstrapCluster(backend, opts());
  const ctx = await bootstrapCluster(backend, opts());
  for (
    const key of [
      ctx.cas.user.tls!.keyPair.privateKey,
      ctx.cas.host.ssh!.keyPair.privateKey,
      ctx.sessionKey,
    ]
  ) {
    assertEquals(key.extractable, false);
  }
  await assertRejects(() => crypto.subtle.exportKey("pkcs8", ctx.cas.user.tls!.keyPair.privateKey));
});

Deno.test("a restart on the same Deno KV file reuses every CA and the session key", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/keybound.kv`;
  let backend: Backend = await DenoKvBackend.open(path);
  const first = await bootstrapCluster(backend, opts());
  const before = await fingerprint(first);
  await backend.close();

  backend = await DenoKvBackend.open(path);
  const second = await bootstrapCluster(backend, opts());
  assertEquals(await fingerprint(second), before);
  assertEquals(second.cas.user.tls!.certPem, first.cas.user.tls!.certPem);
  assertEquals(await sealOpen(first.sessionKey, second.sessionKey), "x");
  await backend.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a cluster name different from the stored one is a clear ConfigError", async () => {
  const backend = new MemoryBackend();
  await bootstrapCluster(backend, opts("one.example"));
  const err = await assertRejects(
    () => bootstrapCluster(backend, opts("two.example")),
    ConfigError,
  );
  assert(
    err.message.includes('"one.example"') && err.message.includes('"two.example"'),
    err.message,
  );
});

Deno.test("two bootstraps racing on one backend end up with one cluster", async () => {
  const backend = new MemoryBackend();
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });
  const [ca, cb] = await Promise.all([
    bootstrapCluster(backend, { ...opts(), log }),
    bootstrapCluster(backend, { ...opts(), log }),
  ]);
  assertEquals(await fingerprint(ca), await fingerprint(cb));
  assertEquals(await sealOpen(ca.sessionKey, cb.sessionKey), "x");
  // Both really raced: each generated a cluster, and one commit lost.
  assertEquals(lines.filter((l) => l.includes("created cluster")).length, 1);
  assertEquals(lines.filter((l) => l.includes("another process created")).length, 1);
});

Deno.test("two connections to one Deno KV file racing to bootstrap share one cluster", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/keybound.kv`;
  const [a, b] = [await DenoKvBackend.open(path), await DenoKvBackend.open(path)];
  const [ca, cb] = await Promise.all([bootstrapCluster(a, opts()), bootstrapCluster(b, opts())]);
  assertEquals(await fingerprint(ca), await fingerprint(cb));
  await a.close();
  await b.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("invalid cluster names are rejected before anything is stored", async () => {
  const backend = new MemoryBackend();
  for (const bad of ["", "has space", "-leading", "a/b"]) {
    await assertRejects(() => bootstrapCluster(backend, opts(bad)), ConfigError, "cluster name");
  }
  assertEquals(await backend.get(CLUSTER_META), null);
});

Deno.test("the invalid cluster name refusal quotes the name so it reads back exactly", async () => {
  const backend = new MemoryBackend();
  const refusal = async (name: string) =>
    (await assertRejects(() => bootstrapCluster(backend, opts(name)), ConfigError)).message;
  // A quote, a newline, an escape sequence, a backslash: each escaped inside one JSON string, so
  // the name's own quotes cannot pass for its end (review-ca N1: "ev\nil "x" …" before).
  for (const name of ['"', 'ev\nil "x" \u001b[31mred', "a\\b c", "\u202eevil"]) {
    const message = await refusal(name);
    const quoted = /^invalid cluster name ("(?:[^"\\]|\\.)*") \((\d+) characters?\): /.exec(
      message,
    );
    assert(quoted, message);
    assertEquals(JSON.parse(quoted[1]), name);
    assertEquals(Number(quoted[2]), name.length);
    // deno-lint-ignore no-control-regex -- no raw control character may reach the message
    assert(!/[\u0000-\u001f\u007f\u202e]/.test(message), message);
  }
  assertStringIncludes(await refusal('"'), 'invalid cluster name "\\"" (1 character): use 1-253');
  // A long name is cut at 80 characters, the ellipsis outside the quotes.
  assertStringIncludes(
    await refusal("x y".repeat(100)),
    `"${"x y".repeat(27).slice(0, 80)}"… (300 characters)`,
  );
  assertEquals(await backend.get(CLUSTER_META), null);
});

/** A name of `n` characters the character rule accepts. */
const nameOf = (n: number) => "c".repeat(n - ".example".length) + ".example";

Deno.test("a new cluster's name is at most 56 characters: every CA subject fits X.509's 64", async () => {
  const backend = new MemoryBackend();
  const err = await assertRejects(
    () => bootstrapCluster(backend, opts(nameOf(MAX_NEW_CLUSTER_NAME + 1))),
    ConfigError,
  );
  assertEquals(err.code, "CONFIG_INVALID");
  assertStringIncludes(err.message, "invalid cluster name");
  assertStringIncludes(err.message, "(57 characters): a new cluster's name is at most 56");
  assert(!err.message.includes("\n"), err.message);
  assertEquals(await backend.get(CLUSTER_META), null);

  const ctx = await bootstrapCluster(backend, opts(nameOf(MAX_NEW_CLUSTER_NAME)));
  const caCerts = [
    ...["host", "user", "spiffe"].map((t) => ctx.cas[t as "host"].tls!.certDer),
    ctx.cas.user.tlsEd25519!.certDer,
  ];
  const names = caCerts.flatMap((der) => parseCertificate(der).subject);
  assertEquals(names.length, 12);
  assertEquals(
    names.filter((a) => a.value.length > X509_NAME_UPPER_BOUND),
    [],
    "every attribute within ub-common-name / ub-organization-name",
  );
  assertEquals(
    Math.max(...names.map((a) => a.value.length)),
    X509_NAME_UPPER_BOUND,
    "the bound is used up by the Ed25519 CA's common name",
  );
});

Deno.test({
  name: "a cluster created with a longer name before the bound still starts, rotates and verifies",
  ignore: ignoreWithout("CA certificates checked by openssl", "openssl"),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/keybound.kv`;
    const long = nameOf(100);
    // What an older version stored: the cluster record with the long name (its CA subjects
    // follow at the next rotation of each CA, below).
    let backend: Backend = await DenoKvBackend.open(path);
    await bootstrapCluster(backend, opts("old.example"));
    const meta = await backend.get<{ created_at: string }>(CLUSTER_META);
    await backend.commit({
      checks: [],
      mutations: [{
        type: "set",
        key: CLUSTER_META,
        value: { cluster_name: long, created_at: meta!.value.created_at },
      }],
    });
    await backend.close();

    backend = await DenoKvBackend.open(path);
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) });
    const ctx = await bootstrapCluster(backend, { ...opts(long), log });
    assertEquals(ctx.clusterName, long);
    const warned = lines.filter((l) => l.includes("longer than a new cluster's may be"));
    assertEquals(warned.length, 1, lines.join("\n"));
    assertStringIncludes(warned[0], "length=100");
    for (const type of ["host", "user"] as const) {
      for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
        await rotateCa(ctx, type, { mode: "manual", phase }, { user: "admin" });
      }
    }
    const userCa = ctx.cas.user.tls!;
    assertEquals(parseCertificate(userCa.certDer).subject[0].value, long);
    assertEquals(
      parseCertificate(ctx.cas.user.tlsEd25519!.certDer).subject[0].value,
      `${long} Ed25519`,
    );
    // OpenSSL 3 parses and verifies certificates whose names exceed the bound, even with
    // -x509_strict: the CA certificates and what they issue keep working.
    const admin = await issueAdminIdentity(ctx);
    const server = await issueServerCertificate(ctx, { dnsNames: ["auth.test"], ipAddresses: [] });
    const files = {
      userCa: userCa.certPem,
      hostCa: ctx.cas.host.tls!.certPem,
      edCa: ctx.cas.user.tlsEd25519!.certPem,
      admin: admin.certPem,
      server: server.certPem,
    };
    for (const [name, pem] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}.pem`, pem);
    }
    const verify = async (ca: string, leaf: string) => {
      const out = await new Deno.Command("openssl", {
        args: ["verify", "-x509_strict", "-CAfile", `${dir}/${ca}.pem`, `${dir}/${leaf}.pem`],
      }).output();
      return new TextDecoder().decode(out.stdout).trim() + new TextDecoder().decode(out.stderr);
    };
    assertEquals(await verify("userCa", "admin"), `${dir}/admin.pem: OK`);
    assertEquals(await verify("hostCa", "server"), `${dir}/server.pem: OK`);
    assertEquals(await verify("edCa", "edCa"), `${dir}/edCa.pem: OK`);
    await backend.close();

    // A restart with the stored name works as before.
    backend = await DenoKvBackend.open(path);
    assertEquals((await bootstrapCluster(backend, opts(long))).clusterName, long);
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("a corrupted CA record fails with STORAGE_ERROR, not a crash", async () => {
  const backend = new MemoryBackend();
  await bootstrapCluster(backend, opts());
  await backend.commit({
    checks: [],
    mutations: [{
      type: "set",
      key: caKey("host"),
      value: { type: "host", tls: { cert_pem: "x" } },
    }],
  });
  const err = await assertRejects(() => bootstrapCluster(backend, opts()), KeyboundError);
  assertEquals(err.code, "STORAGE_ERROR");
  assert(err.message.includes("host certificate authority"), err.message);
});
