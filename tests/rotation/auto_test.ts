/**
 * Automatic CA rotation against a real auth process: `tctl auth rotate
 * --grace-period` walks init → update_clients → update_servers → standby by
 * itself, each change audited once. During a `jwt` rotation the JWKS serves
 * both keys and JWT-SVIDs signed by either verify with jose; after standby
 * only the new key's do. A `spiffe` rotation does the same for X.509 SVIDs
 * and the SPIFFE bundle.
 *
 * @module
 */
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from "jose";
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { certificatesFromPem, parseCertificate } from "../../src/pki/mod.ts";
import { signRequest } from "../../src/protocol/signed_request.ts";
import { assert, assertEquals } from "../_assert.ts";
import { eventually, issuerOf, type RotationBot, startRotationAuth } from "./_auth.ts";

async function post(bot: RotationBot, path: string, body: unknown) {
  const text = JSON.stringify(body);
  const res = await bot.fetch(`${bot.h.baseUrl}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: await signRequest(bot.identity!, { method: "POST", path, body: text }),
    },
    body: text,
  });
  const json = await res.json();
  assertEquals(res.status, 200, JSON.stringify(json));
  return json;
}

async function getJson(bot: RotationBot, path: string) {
  return await (await bot.fetch(`${bot.h.baseUrl}${path}`)).json();
}

Deno.test({
  name: "rotation: automatic jwt and spiffe rotation; JWKS and bundle carry both keys meanwhile",
  sanitizeResources: false,
  async fn() {
    await using auth = await startRotationAuth();
    const bot = await auth.onboard("w1");
    const jwtSvid = async () =>
      (await post(bot, "/v1/bot/svid/jwt", { selector: { name: "example" }, audiences: ["a"] }))
        .jwt as string;
    let svidBundleMax = 0;
    const x509Svid = async () => {
      const r = await post(bot, "/v1/bot/svid/x509", {
        selector: { name: "example" },
        public_key: await exportSpkiPem((await generateKeyPair("ES256")).publicKey),
      });
      svidBundleMax = Math.max(svidBundleMax, r.bundle.length);
      return r.svid as string;
    };
    const kid = (jwt: string) => decodeProtectedHeader(jwt).kid as string;
    const verifies = async (jwt: string, jwks: JSONWebKeySet) => {
      try {
        await jwtVerify(jwt, createLocalJWKSet(jwks), { audience: "a" });
        return true;
      } catch {
        return false;
      }
    };

    const oldJwt = await jwtSvid();
    const oldSvid = await x509Svid();
    for (const type of ["jwt", "spiffe"]) {
      const r = await auth.tctl("auth", "rotate", `--type=${type}`, "--grace-period=18s");
      assertEquals(r.code, 0, r.stderr);
      assert(/phase init \(auto\)/.test(r.stdout), r.stdout);
      assert(/Warning: each phase lasts 6 s/.test(r.stdout), "a phase shorter than renewals warns");
    }

    // Both rotations walk on their own; meanwhile keep signing and checking.
    // The SVID from before the rotation counts: under load the loop may first run after
    // update_clients already made the new key sign.
    const kids = new Set<string>([kid(oldJwt)]);
    const issued: string[] = [oldJwt];
    let sawBoth = false;
    let bundleBoth = false;
    await eventually(
      async () => {
        const before = await getJson(bot, "/.well-known/jwks.json") as JSONWebKeySet;
        const jwt = await jwtSvid();
        kids.add(kid(jwt));
        issued.push(jwt);
        const jwks = await getJson(bot, "/.well-known/jwks.json") as JSONWebKeySet;
        const ids = (k: JSONWebKeySet) => k.keys.map((x) => x.kid).join(",");
        if (ids(before) === ids(jwks)) {
          // No phase change in between: the SVID's key is the one listed first.
          assertEquals(jwks.keys[0].kid, kid(jwt), "the signing key is listed first");
        }
        if (jwks.keys.length === 2) {
          sawBoth = true;
          // Every SVID issued so far, by either key, verifies with this JWKS.
          for (const x of issued) assert(await verifies(x, jwks), `kid ${kid(x)} did not verify`);
        }
        const bundle = await getJson(bot, "/v1/spiffe/bundle");
        const x509 = bundle.keys.filter((k: { use: string }) => k.use === "x509-svid");
        if (x509.length === 2) {
          bundleBoth = true;
          await x509Svid(); // its answer's bundle lists both too
        }
        const s = await auth.status();
        return s.cas.filter((c) => ["jwt", "spiffe"].includes(c.type))
          .every((c) => c.phase === "standby");
      },
      60_000,
      "both automatic rotations to reach standby",
    );
    assert(sawBoth, "the JWKS never served two keys");
    assert(bundleBoth, "the SPIFFE bundle never held two X.509 CAs");
    assertEquals(svidBundleMax, 2, "an X.509 SVID answer's bundle held both CAs");
    assertEquals(kids.size, 2, "SVIDs were signed by the old and then the new key");

    const jwks = await getJson(bot, "/.well-known/jwks.json") as JSONWebKeySet;
    assertEquals(jwks.keys.length, 1);
    assert(!(await verifies(oldJwt, jwks)), "an old-key SVID still verifies after standby");
    assert(await verifies(await jwtSvid(), jwks));
    const bundle = await getJson(bot, "/v1/spiffe/bundle");
    const cas = bundle.keys.filter((k: { use: string }) => k.use === "x509-svid")
      .map((k: { x5c: string[] }) =>
        `-----BEGIN CERTIFICATE-----\n${k.x5c[0]}\n-----END CERTIFICATE-----\n`
      );
    assertEquals(cas.length, 1);
    const svidCert = (pem: string) => parseCertificate(certificatesFromPem(pem)[0]);
    assertEquals(await issuerOf(svidCert(oldSvid), cas), undefined);
    assertEquals(await issuerOf(svidCert(await x509Svid()), cas), cas[0]);

    // Four phase changes per CA, each audited exactly once, by the auth service.
    const audit = JSON.parse(
      (await auth.tctl("audit", "ls", "--type=ca.rotation", "--format=json", "--limit=50")).stdout,
    ) as { ca_type: string; phase: string; user: string }[];
    for (const type of ["jwt", "spiffe"]) {
      const mine = audit.filter((e) => e.ca_type === type).reverse();
      assertEquals(mine.map((e) => e.phase), [
        "init",
        "update_clients",
        "update_servers",
        "standby",
      ]);
      assertEquals(mine.map((e) => e.user), ["admin", "auth", "auth", "auth"]);
    }
  },
});
