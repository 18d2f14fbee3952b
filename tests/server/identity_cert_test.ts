import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import {
  certificatesFromPem,
  parseCertificate,
  parseSshCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import {
  IDENTITY_CERT_PATH,
  IdentityCertResponse,
} from "../../src/protocol/output_cert_messages.ts";
import { type RequestSigner, signRequest } from "../../src/protocol/signed_request.ts";
import { SUBJECT_OIDS } from "../../src/protocol/subject.ts";
import { listAudit } from "../../src/server/audit.ts";
import { newWorkloadCluster, put, type WorkloadCluster } from "./_workload_fixture.ts";
import { type Harness, onboardedBot, putBot, rejectsCode, startHarness } from "./_join_fixture.ts";

type Certificates = {
  tls_cert: string;
  tls_ca_certs: string[];
  ssh_cert: string;
  ssh_ca_keys: string[];
};

async function keyForms(alg: "ES256" | "EdDSA" = "ES256") {
  const key = await generateKeyPair(alg);
  return {
    key,
    tls: await exportSpkiPem(key.publicKey),
    ssh: await toAuthorizedKey(key.publicKey),
  };
}

/** Asks for output certificates as `signer` and returns a signer of the output certificate. */
async function outputSigner(
  call: WorkloadCluster["call"],
  signer?: RequestSigner,
): Promise<RequestSigner> {
  const k = await keyForms();
  const r = await call(
    IDENTITY_CERT_PATH,
    { public_tls_key: k.tls, public_ssh_key: k.ssh },
    signer,
  );
  assertEquals(r.status, 200, JSON.stringify(r.json));
  const c = r.json.certificates as Certificates;
  return { certDer: certificatesFromPem(c.tls_cert)[0], privateKey: k.key.privateKey };
}

Deno.test("identity-cert: user CA certificates for the key, marked as output certificates", async () => {
  const { ctx, call } = await newWorkloadCluster();
  const k = await keyForms();
  const r = await call(IDENTITY_CERT_PATH, {
    public_tls_key: k.tls,
    public_ssh_key: k.ssh,
    ttl_seconds: 600,
  });
  assertEquals(r.status, 200, JSON.stringify(r.json));
  const c = r.json.certificates as Certificates;
  const cert = parseCertificate(certificatesFromPem(c.tls_cert)[0]);
  assert(await verifyCertificateSignature(cert, ctx.cas.user.tls!.keyPair.publicKey));
  assertEquals(c.tls_ca_certs, [ctx.cas.user.tls!.certPem]);
  assertEquals(c.ssh_ca_keys, [ctx.cas.user.ssh!.publicKey]);
  const attr = (oid: string) => cert.subject.filter((a) => a.oid === oid).map((a) => a.value);
  assertEquals(attr(SUBJECT_OIDS.commonName), ["bot-example"]);
  assertEquals(attr(SUBJECT_OIDS.organization), ["bot-example", "workload"]);
  assertEquals(attr(SUBJECT_OIDS.botName), ["example"]);
  assertEquals(attr(SUBJECT_OIDS.usage), ["output"]);
  assertEquals(attr(SUBJECT_OIDS.botInstanceId), []);
  assertEquals(attr(SUBJECT_OIDS.generation), []);
  const now = ctx.now().getTime();
  assertEquals(cert.notAfter.getTime() / 1000, Math.floor(now / 1000) + 600);
  assertEquals(r.json.expires, new Date(now + 600_000).toISOString());
  const ssh = await parseSshCertificate(c.ssh_cert);
  assertEquals(ssh.certType, "user");
  assertEquals(ssh.principals, ["root"]);
  assertEquals(await toAuthorizedKey(ssh.publicKey), k.ssh);
  const events = (await listAudit(ctx, { type: "cert.create" })).items;
  assertEquals(events.length, 1);
  const e = events[0] as unknown as Record<string, unknown>;
  assertEquals([e.cert_type, e.usage, e.bot_name], ["identity", "output", "example"]);
});

Deno.test("identity-cert: the lifetime is capped by the bot's max_session_ttl", async () => {
  const { ctx, call } = await newWorkloadCluster();
  await put(ctx, {
    kind: "bot",
    version: "v1",
    metadata: { name: "example" },
    spec: { roles: ["workload"], traits: [], max_session_ttl: "30m" },
  });
  const k = await keyForms("EdDSA");
  const r = await call(IDENTITY_CERT_PATH, {
    public_tls_key: k.tls,
    public_ssh_key: k.ssh,
    ttl_seconds: 7200,
  });
  assertEquals(r.status, 200, JSON.stringify(r.json));
  const cert = parseCertificate(
    certificatesFromPem((r.json.certificates as Certificates).tls_cert)[0],
  );
  assertEquals(cert.notAfter.getTime() / 1000, Math.floor(ctx.now().getTime() / 1000) + 1800);
});

Deno.test("identity-cert: two different keys in the two forms are refused", async () => {
  const { call } = await newWorkloadCluster();
  const [a, b] = [await keyForms(), await keyForms()];
  const r = await call(IDENTITY_CERT_PATH, { public_tls_key: a.tls, public_ssh_key: b.ssh });
  assertEquals(r.status, 400);
  const error = r.json.error as { message: string; details: { path: string } };
  assertEquals(error.details.path, "public_ssh_key");
  assertStringIncludes(error.message, "same key");
});

Deno.test("identity-cert: an output certificate cannot sign bot API requests", async () => {
  const { call, ctx } = await newWorkloadCluster();
  const output = await outputSigner(call);
  const heartbeat = await call("/v1/bot/heartbeat", {
    is_startup: true,
    version: "1",
    hostname: "h",
    uptime_seconds: 0,
    one_shot: false,
    architecture: "x86_64",
    os: "linux",
  }, output);
  assertEquals(heartbeat.status, 403);
  assertStringIncludes((heartbeat.json.error as { message: string }).message, "not an identity");
  const svid = await call("/v1/bot/svid/x509", {
    selector: { name: "example" },
    public_key: (await keyForms()).tls,
  }, output);
  assertEquals(svid.status, 403);
  const k = await keyForms();
  const again = await call(
    IDENTITY_CERT_PATH,
    { public_tls_key: k.tls, public_ssh_key: k.ssh },
    output,
  );
  assertEquals(again.status, 403, "an output certificate cannot get more output certificates");
  // Only the one issued to the bot itself was audited.
  assertEquals((await listAudit(ctx, { type: "cert.create" })).items.length, 1);
});

async function withHarness(fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness();
  try {
    await putBot(h.ctx, "b1");
    await fn(h);
  } finally {
    await h.close();
  }
}

async function postSigned(h: Harness, signer: RequestSigner, path: string, body: unknown) {
  const text = JSON.stringify(body);
  const res = await fetch(h.baseUrl + path, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: await signRequest(signer, { method: "POST", path, body: text }),
    },
    body: text,
  });
  return { status: res.status, json: await res.json() as Record<string, unknown> };
}

Deno.test("identity-cert: an output certificate cannot refresh a join, at begin or continue", async () => {
  await withHarness(async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
    const k = await keyForms();
    const issued = await postSigned(h, bot.identity!, IDENTITY_CERT_PATH, {
      public_tls_key: k.tls,
      public_ssh_key: k.ssh,
    });
    assertEquals(issued.status, 200, JSON.stringify(issued.json));
    const output: RequestSigner = {
      certDer: certificatesFromPem((issued.json.certificates as Certificates).tls_cert)[0],
      privateKey: k.key.privateKey,
    };
    const cont = await postSigned(h, output, "/v1/join/bound-keypair/continue", {
      session: "s",
      answer: { type: "giving_up", reason: "UNSUPPORTED_JOIN_METHOD" },
    });
    assertEquals(cont.status, 403);
    assertStringIncludes((cont.json.error as { message: string }).message, "not an identity");

    const held = bot.identity;
    bot.identity = output;
    await rejectsCode(() => bot.join(), "ACCESS_DENIED", "not an identity");
    // The bot's real identity still refreshes.
    bot.identity = held;
    const refreshed = await bot.join();
    assertEquals(refreshed.bot_name, "b1");
  });
});

Deno.test("identity-cert: the answer on the wire has exactly the schema's fields", async () => {
  await withHarness(async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
    const k = await keyForms();
    const r = await postSigned(h, bot.identity!, IDENTITY_CERT_PATH, {
      public_tls_key: k.tls,
      public_ssh_key: k.ssh,
    });
    assertEquals(r.status, 200, JSON.stringify(r.json));
    const keys = (o: object) => Object.keys(o).sort();
    // The schema strips unknown fields when it parses, so a leak would pass a parse: compare keys.
    assertEquals(keys(r.json), keys(IdentityCertResponse.shape));
    assertEquals(
      keys(r.json.certificates as object),
      keys(IdentityCertResponse.shape.certificates.shape),
    );
    IdentityCertResponse.parse(r.json);
  });
});
