/**
 * The bot's certificate key algorithm across an upgrade: a bot whose stored
 * identity has a P-256 key (what every earlier version stored) refreshes with
 * it after the agent switches to Ed25519 certificate keys, and the identity
 * that refresh stores carries the new Ed25519 key; the way back works the
 * same. Each identity is signed by the user CA key of its key's algorithm
 * (P-256 or Ed25519). Real files in a directory, a real auth app, the
 * agent's own loading of its stored identity.
 *
 * @module
 */
import { StoredClientState } from "../../src/agent/client_state.ts";
import type { Clock } from "../../src/agent/clock.ts";
import { type BotIdentity, loadIdentity } from "../../src/agent/identity.ts";
import { certificateKeyAlgorithmFor, IdentityService } from "../../src/agent/identity_service.ts";
import { joinTransport } from "../../src/agent/join_client.ts";
import { readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { importPkcs8Pem, type KeyAlgorithm } from "../../src/crypto/keys.ts";
import { readCertificateFields } from "../../src/pki/cert_fields.ts";
import {
  certificatesFromPem,
  parseCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import { fromBase64Url, fromPem } from "../../src/util/encoding.ts";
import { silentLogger } from "../../src/util/log.ts";
import { DirectoryStorage } from "../../runtime-adapters/deno/dir_storage.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { KeyboundError } from "../../src/errors.ts";
import { type Cluster, newCluster } from "../agent/_cluster.ts";
import { runTbot, tbotYaml } from "../tbot/_harness.ts";

const CANONICAL_SPKI_LENGTH: Record<KeyAlgorithm, number> = { ES256: 91, EdDSA: 44 };

/** A tbot-like agent over `dir` whose certificate keys are of `alg` (undefined: the default). */
async function agentOn(
  cluster: Cluster,
  dir: string,
  alg: KeyAlgorithm | undefined,
  signedWith: string[],
  secret?: string,
  loseAnswer?: () => boolean,
): Promise<IdentityService> {
  const storage = new DirectoryStorage(dir);
  await storage.init();
  const clientState = await StoredClientState.load(storage, silentLogger, cluster.now);
  // Records the `alg` of each signed request's JWS header.
  const spy = (async (input: string | URL | Request, init?: RequestInit) => {
    const auth = new Headers(init?.headers).get("authorization");
    if (auth) {
      const header = JSON.parse(
        new TextDecoder().decode(fromBase64Url(auth.split(" ")[1].split(".")[0])),
      );
      signedWith.push(header.alg);
    }
    const res = await cluster.fetch(input, init);
    // A process killed right after the server committed: the answer never arrives.
    const path = new URL(input instanceof Request ? input.url : input).pathname;
    if (path.endsWith("/continue") && res.ok && loseAnswer?.()) {
      throw new TypeError("connection reset");
    }
    return res;
  }) as typeof fetch;
  const clock: Clock = { now: cluster.now, sleep: () => Promise.resolve() };
  return new IdentityService({
    storage,
    clientState,
    tokenName: "example",
    credentialTtlMs: 3600_000,
    ...(secret ? { registrationSecret: secret } : {}),
    ...joinTransport("https://auth.test", spy),
    clock,
    log: silentLogger,
    ...(alg ? { certificateKeyAlgorithm: alg } : {}),
  }, await loadIdentity(storage, "example", silentLogger));
}

/**
 * The algorithm of the stored identity: its key file and its certificate's
 * key, which must agree. The user CA key of the same algorithm signed the
 * certificate (the cluster is new, so its user CA has an Ed25519 X.509 key),
 * and the stored `tlscacerts` hold the CA certificate that verifies it.
 */
async function storedAlgorithm(dir: string): Promise<KeyAlgorithm> {
  const storage = new DirectoryStorage(dir);
  const key = await importPkcs8Pem((await readText(storage, STORAGE_FILES.key))!);
  const certPem = (await readText(storage, STORAGE_FILES.tlsCert))!;
  const der = fromPem("CERTIFICATE", certPem);
  assertEquals(readCertificateFields(der).spki.length, CANONICAL_SPKI_LENGTH[key.alg]);
  const cert = parseCertificate(der);
  assertEquals(cert.signatureAlgorithm, key.alg, "signed by the user CA key of its algorithm");
  const [ca] = certificatesFromPem((await readText(storage, STORAGE_FILES.tlsCaCerts))!);
  assert(await verifyCertificateSignature(cert, await parseCertificate(ca).publicKey()));
  return key.alg;
}

Deno.test("a stored P-256 identity refreshes after the switch to Ed25519 certificate keys, and back", async () => {
  const cluster = await newCluster();
  const dir = await Deno.makeTempDir({ prefix: "keybound-idkey-" });
  try {
    await cluster.createBot("example");
    const secret = (await cluster.createToken("example", "example"))!;
    const signed: string[] = [];

    // Before the upgrade: the default stores a P-256 identity.
    const before = await agentOn(cluster, dir, undefined, signed, secret);
    const first = await before.renew();
    assertEquals(await storedAlgorithm(dir), "ES256");
    const recoveries = (await cluster.token("example")).status!.bound_keypair!.recovery_count;

    // After: a restarted agent that generates Ed25519 keys loads the P-256
    // identity from its files and refreshes with it.
    const after = await agentOn(cluster, dir, "EdDSA", signed, secret);
    assert(after.hasValidIdentity(), "the stored P-256 identity loads as valid");
    signed.length = 0;
    const second: BotIdentity = await after.renew();
    assertEquals(signed, ["ES256"], "the refresh is signed with the stored P-256 key");
    assertEquals(second.botInstanceId, first.botInstanceId, "a refresh, not a recovery");
    assertEquals(second.generation, first.generation + 1);
    assertEquals(await storedAlgorithm(dir), "EdDSA");

    // The next refresh, in a new process again, is signed with the Ed25519 key.
    signed.length = 0;
    const third = await (await agentOn(cluster, dir, "EdDSA", signed)).renew();
    assertEquals(signed, ["EdDSA"]);
    assertEquals(third.generation, second.generation + 1);

    // Back to P-256 (an identity output that copies the bot's certificate was added).
    signed.length = 0;
    const fourth = await (await agentOn(cluster, dir, "ES256", signed)).renew();
    assertEquals(signed, ["EdDSA"]);
    assertEquals(fourth.generation, third.generation + 1);
    assertEquals(await storedAlgorithm(dir), "ES256");
    assertEquals(fourth.botInstanceId, first.botInstanceId);
    assertEquals(
      (await cluster.token("example")).status!.bound_keypair!.recovery_count,
      recoveries,
      "no recovery was consumed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a join resumed with a key of another algorithm is refreshed once more before it is used", async () => {
  const cluster = await newCluster();
  const dir = await Deno.makeTempDir({ prefix: "keybound-idkey-resume-" });
  try {
    await cluster.createBot("example");
    const secret = (await cluster.createToken("example", "example"))!;
    const signed: string[] = [];
    const first = await (await agentOn(cluster, dir, "EdDSA", signed, secret)).renew();
    const recoveries = (await cluster.token("example")).status!.bound_keypair!.recovery_count;
    const pending = () => readText(new DirectoryStorage(dir), STORAGE_FILES.pendingJoin);

    // An Ed25519 agent is killed after the server committed its refresh.
    let lose = 1;
    const killed = await agentOn(cluster, dir, "EdDSA", signed, undefined, () => lose-- > 0);
    await assertRejects(() => killed.renew(), KeyboundError);
    assert(await pending(), "the pending-join record stays");

    // Restarted with an identity output that copies the bot's certificate
    // (P-256): the resumed identity's Ed25519 key is replaced at once.
    const p256 = await agentOn(cluster, dir, "ES256", signed);
    const second = await p256.renew();
    assertEquals(await storedAlgorithm(dir), "ES256");
    assertEquals(second.generation, first.generation + 2, "the resumed refresh, then one more");
    assertEquals(second.botInstanceId, first.botInstanceId);
    assertEquals(await pending(), null);

    // Killed again, now during that extra refresh (after its commit): the
    // next start resumes it, and its key is already P-256.
    lose = 2; // the first lost answer is the Ed25519 refresh's, the second the extra refresh's
    const twice = await agentOn(cluster, dir, "EdDSA", signed, undefined, () => lose-- > 0);
    await assertRejects(() => twice.renew(), KeyboundError);
    const again = await agentOn(cluster, dir, "ES256", signed, undefined, () => lose-- > 0);
    await assertRejects(() => again.renew(), KeyboundError);
    assert(await pending(), "the extra refresh's record stays");
    const third = await (await agentOn(cluster, dir, "ES256", signed)).renew();
    assertEquals(await storedAlgorithm(dir), "ES256");
    assertEquals(third.generation, second.generation + 2, "the Ed25519 refresh and the extra one");
    assertEquals(third.botInstanceId, first.botInstanceId);

    // A resume whose key already matches is not refreshed again, and nothing was locked
    // or recovered on the way.
    const fourth = await (await agentOn(cluster, dir, "ES256", signed)).renew();
    assertEquals(fourth.generation, third.generation + 1);
    assertEquals(
      (await cluster.token("example")).status!.bound_keypair!.recovery_count,
      recoveries,
      "no recovery was consumed",
    );
    assertEquals((await cluster.locks()).length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certificate key algorithm: P-256 only where an identity output copies the bot's certificate", () => {
  assertEquals(certificateKeyAlgorithmFor([]), "EdDSA");
  assertEquals(certificateKeyAlgorithmFor([{ type: "ssh_host" }]), "EdDSA");
  assertEquals(
    certificateKeyAlgorithmFor([{ type: "identity", credential_ttl: 3600_000 }]),
    "EdDSA",
  );
  assertEquals(certificateKeyAlgorithmFor([{ type: "ssh_host" }, { type: "identity" }]), "ES256");
});

Deno.test("tbot: Ed25519 certificate key without an identity output, P-256 when one copies it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-idkey-tbot-" });
  try {
    for (const [name, output] of [["bare", undefined], ["copied", `${dir}/out`]] as const) {
      const cluster = await newCluster();
      await cluster.createBot("example");
      const secret = (await cluster.createToken("example", "example"))!;
      const served = await cluster.serve();
      try {
        const config = `${dir}/${name}.yaml`;
        const storage = `${dir}/${name}`;
        await Deno.writeTextFile(
          config,
          tbotYaml({ address: served.address, storage, pins: [cluster.pin], secret, output }),
        );
        const r = await runTbot(["start", "-c", config, "--oneshot"]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(await storedAlgorithm(storage), output ? "ES256" : "EdDSA", name);
      } finally {
        await served.stop();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
