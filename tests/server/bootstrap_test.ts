import { assert, assertEquals, assertNotEquals, assertRejects } from "../_assert.ts";
import { algOf, keyId } from "../../src/crypto/keys.ts";
import { parseAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { ConfigError, KeyboundError } from "../../src/errors.ts";
import { NAME_OIDS, parseCertificate, spkiPin } from "../../src/pki/mod.ts";
import { bootstrapCluster, CA_VALIDITY_MS, caPin } from "../../src/server/bootstrap.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { caKey, CLUSTER_META } from "../../src/server/keys.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import type { Backend } from "../../src/storage/backend.ts";
import { createLogger, silentLogger } from "../../src/util/log.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";

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
