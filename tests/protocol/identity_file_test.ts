import { assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { BadParameterError } from "../../src/errors.ts";
import { generateStorableKeyPair, verify } from "../../src/crypto/keys.ts";
import { parseCertificate } from "../../src/pki/mod.ts";
import { formatIdentityFile, parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { issueAdminIdentity, issueAdminIdentityFile } from "../../src/server/identity.ts";
import { newCluster } from "../server/_cluster_fixture.ts";

Deno.test("the admin identity file round-trips: cert, working key, CAs sorted by OU", async () => {
  const { ctx } = await newCluster();
  const text = await issueAdminIdentityFile(ctx);
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z ]+)-----/g)].map((m) => m[1]);
  assertEquals(blocks, ["CERTIFICATE", "PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"]);

  const id = await parseIdentityFile(text);
  assertEquals(id.userCaPems, [ctx.cas.user.tls!.certPem]);
  assertEquals(id.hostCaPems, [ctx.cas.host.tls!.certPem]);
  const cert = parseCertificate(id.certDer);
  assertEquals(cert.subject.map((a) => a.value), ["admin", "@admin"]);
  assertEquals(cert.extKeyUsage, ["clientAuth"]);
  assertEquals(id.privateKey.extractable, false);
  const data = new TextEncoder().encode("proof");
  const sig = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, id.privateKey, data),
  );
  assertEquals(await verify(await cert.publicKey(), sig, data), true);
});

Deno.test("identity files with a foreign key, no key, or an unlabelled CA are rejected", async () => {
  const { ctx } = await newCluster();
  const issued = await issueAdminIdentity(ctx);
  const caPems = { userCaPems: [ctx.cas.user.tls!.certPem], hostCaPems: [] };
  const otherKey = (await generateStorableKeyPair("ES256")).pkcs8Pem;
  await assertRejects(
    () => parseIdentityFile(formatIdentityFile({ ...issued, ...caPems, keyPem: otherKey })),
    BadParameterError,
    "does not belong to the certificate",
  );
  await assertRejects(() => parseIdentityFile(issued.certPem), BadParameterError, "PRIVATE KEY");
  // An issued leaf in CA position has no OU user/host.
  const text = formatIdentityFile({ ...issued, userCaPems: [issued.certPem], hostCaPems: [] });
  const err = await assertRejects(() => parseIdentityFile(text), BadParameterError);
  assertStringIncludes(err.message, 'OU "user" or "host"');
});
