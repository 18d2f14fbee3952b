/**
 * The Worker bot (BotIdentity Durable Object in real workerd) across user CA
 * rotations: renewing through every phase it keeps its bot instance and
 * consumes no recovery, and after sleeping through a whole rotation its
 * still-valid certificate is refused with `CA_KEY_DROPPED` on the JWT-SVID
 * call, and the object recovers once with its bound key and answers.
 *
 * @module
 */
import { createLocalJWKSet, jwtVerify } from "jose";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import type { BotIdentityRpc } from "../../runtime-adapters/workers/bot_identity_rpc.ts";
import type { RotationPhase } from "../../src/protocol/ca_rotation.ts";
import type { Token } from "../../src/resources/schemas.ts";
import { toHex } from "../../src/util/encoding.ts";
import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { bundle, startWorker } from "../workers/_harness.ts";
import { provisionBot, provisionWorkloadIdentity, SVID_ROLE } from "../workers/_join_fixture.ts";
import { currentAdmin, type LoopbackAuth, startLoopbackAuth } from "../workers/_loopback_auth.ts";

const API_TOKEN = toHex(crypto.getRandomValues(new Uint8Array(24)));
const BOT_ENTRY = new URL("../../runtime-adapters/workers/bot_worker.ts", import.meta.url);

async function rotateUserCa(auth: LoopbackAuth, each: () => Promise<void>): Promise<void> {
  const phases: RotationPhase[] = ["init", "update_clients", "update_servers", "standby"];
  for (const phase of phases) {
    await (await currentAdmin(auth)).rotateCa("user", { mode: "manual", phase });
    await each();
  }
}

async function recoveries(auth: LoopbackAuth, token: string): Promise<number> {
  const t = (await (await currentAdmin(auth)).get("token", token)) as Token;
  return t.status!.bound_keypair!.recovery_count;
}

Deno.test("rotation (agent): the Worker bot follows a user CA rotation, and recovers once after sleeping through one", async () => {
  await using auth = await startLoopbackAuth("rotation-edge.example");
  await provisionWorkloadIdentity(auth.api, "edge");
  const secret = await provisionBot(auth.api, "edge-bot", [SVID_ROLE], 2);
  await using script = await bundle(BOT_ENTRY);
  const persistDir = await Deno.makeTempDir({ prefix: "keybound-rot-do-" });
  const worker = await startWorker(script.path, {
    durableObjects: { BOT_IDENTITY: "BotIdentity" },
    persistDir,
    bindings: {
      AUTH_SERVER: auth.url,
      TBOT_WORKLOAD_IDENTITY: "edge",
      BOT_API_TOKEN: API_TOKEN,
      TBOT_TOKEN: "edge-bot",
      TBOT_REGISTRATION_SECRET: secret,
      TBOT_CREDENTIAL_TTL: "1h",
      TBOT_RENEWAL_INTERVAL: "20m",
    },
  });
  try {
    const ns = await worker.mf.getDurableObjectNamespace(
      "BOT_IDENTITY",
    ) as unknown as DurableObjectNamespace<BotIdentityRpc>;
    const rpc = ns.get(ns.idFromName("edge-bot"));
    const first = await rpc.start();
    assertEquals(first.status, "healthy", JSON.stringify(first));
    const userCa = async () => (await (await currentAdmin(auth)).caExport("user")).tls_ca_certs;
    const caBefore = await userCa();

    // Renewing in every phase: same instance, no recovery, CA list follows the rotation.
    const caLists: number[] = [];
    await rotateUserCa(auth, async () => {
      const r = await rpc.renew();
      assert(r.ok, JSON.stringify(r));
      assertEquals(r.bot_instance_id, first.bot_instance_id);
      const x = await rpc.x509();
      assert(x.ok, JSON.stringify(x));
      caLists.push(x.credentials.tls_ca_certs.length);
    });
    assertEquals(caLists, [2, 2, 2, 1], "tls_ca_certs: both user CAs during the rotation");
    assertNotEquals(await userCa(), caBefore);
    assertEquals(await recoveries(auth, "edge-bot"), 1, "no recovery consumed");

    // Asleep through a whole rotation: the certificate is still valid for the bot's clock.
    await rotateUserCa(auth, () => Promise.resolve());
    const res = await worker.fetch("/jwt-svid?audience=https://svc.example", {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    const svid = await res.json();
    assertEquals(res.status, 200, JSON.stringify(svid));
    const jwks = await (await fetch(`${auth.url}/.well-known/jwks.json`)).json();
    await jwtVerify(svid.jwt, createLocalJWKSet(jwks), { audience: "https://svc.example" });
    const after = await rpc.readiness();
    assertNotEquals(after.bot_instance_id, first.bot_instance_id, "a recovery: a new instance");
    assertEquals(await recoveries(auth, "edge-bot"), 2, "one recovery consumed");
    const r = await rpc.renew();
    assert(r.ok && r.bot_instance_id === after.bot_instance_id, "then refreshes normally");
    assertEquals(await recoveries(auth, "edge-bot"), 2);
  } finally {
    await worker.stop();
    await Deno.remove(persistDir, { recursive: true }).catch(() => {});
  }
});
