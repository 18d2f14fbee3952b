/**
 * The BotIdentity Durable Object in real workerd (miniflare), joining an
 * auth service on loopback: first join with a registration secret (a Worker
 * secret), credentials through the bot Worker, single-flight joins, sealed
 * keys at rest, a restart over the same persistence directory that refreshes
 * without consuming a recovery, alarm-driven renewal, and the refusal a
 * wiped storage gets.
 *
 * @module
 */
import { createLocalJWKSet, jwtVerify } from "jose";
import { toHex } from "../../src/util/encoding.ts";
import type { Token } from "../../src/resources/schemas.ts";
import type {
  BotIdentityRpc,
  BotReadiness,
} from "../../runtime-adapters/workers/bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { bundle, type RunningWorker, startWorker } from "./_harness.ts";
import { provisionBot, provisionWorkloadIdentity, SVID_ROLE } from "./_join_fixture.ts";
import { type LoopbackAuth, startLoopbackAuth } from "./_loopback_auth.ts";

const API_TOKEN = toHex(crypto.getRandomValues(new Uint8Array(24)));
const KEK = toHex(crypto.getRandomValues(new Uint8Array(32)));
const BOT_ENTRY = new URL("../../runtime-adapters/workers/bot_worker.ts", import.meta.url);

interface BotRun {
  worker: RunningWorker;
  rpc: BotIdentityRpc;
}

async function startBot(
  scriptPath: string,
  auth: LoopbackAuth,
  persistDir: string,
  vars: Record<string, string>,
): Promise<BotRun> {
  const worker = await startWorker(scriptPath, {
    durableObjects: { BOT_IDENTITY: "BotIdentity" },
    persistDir,
    bindings: {
      AUTH_SERVER: auth.url,
      TBOT_STORAGE_KEK: KEK,
      TBOT_WORKLOAD_IDENTITY: "edge",
      BOT_API_TOKEN: API_TOKEN,
      ...vars,
    },
  });
  // miniflare's proxy forwards RPC calls from Deno into workerd.
  const ns = await worker.mf.getDurableObjectNamespace(
    "BOT_IDENTITY",
  ) as unknown as DurableObjectNamespace<BotIdentityRpc>;
  const rpc = ns.get(ns.idFromName(vars.TBOT_TOKEN));
  return { worker, rpc };
}

async function tokenStatus(auth: LoopbackAuth, name: string) {
  return ((await auth.api.get("token", name)) as Token).status?.bound_keypair;
}

async function readyz(worker: RunningWorker): Promise<{ status: number; body: BotReadiness }> {
  const res = await worker.fetch("/readyz");
  return { status: res.status, body: await res.json() };
}

/** Files under `dir` whose bytes contain `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (new TextDecoder("latin1").decode(await Deno.readFile(p)).includes(needle)) {
        hits.push(p);
      }
    }
  };
  await walk(dir);
  return hits;
}

Deno.test("BotIdentity in workerd: join, credentials, restart, wipe", async (t) => {
  await using auth = await startLoopbackAuth();
  await provisionWorkloadIdentity(auth.api, "edge");
  const secret = await provisionBot(auth.api, "edge-bot", [SVID_ROLE]);
  await using script = await bundle(BOT_ENTRY);
  const persistDir = await Deno.makeTempDir({ prefix: "keybound-do-" });
  const vars = {
    TBOT_TOKEN: "edge-bot",
    TBOT_REGISTRATION_SECRET: secret,
    TBOT_CREDENTIAL_TTL: "1h",
    TBOT_RENEWAL_INTERVAL: "20m",
  };
  let first!: BotReadiness;
  try {
    let run = await startBot(script.path, auth, persistDir, vars);
    try {
      await t.step("first join with the registration secret, alarm armed", async () => {
        const r = await readyz(run.worker);
        assertEquals(r.status, 200, JSON.stringify(r.body));
        first = r.body;
        assertEquals(first.status, "healthy");
        assertEquals(first.bot_name, "edge-bot");
        assertEquals(first.generation, 1);
        assert(first.next_renewal !== null, "no renewal alarm armed");
        const armedIn = Date.parse(first.next_renewal!) - Date.parse(first.last_renewal!);
        // The shared runner's jitter shortens the interval by at most a seventh.
        assert(armedIn >= 20 * 60_000 * 6 / 7, `alarm armed ${armedIn} ms after the join`);
        const status = await tokenStatus(auth, "edge-bot");
        assertEquals(status?.recovery_count, 1);
        assert(status?.bound_public_key, "the token has no bound key");
      });

      await t.step(
        "JWT-SVID and X.509 routes need the bearer token and answer with credentials",
        async () => {
          const anonymous = await run.worker.fetch("/jwt-svid?audience=https://svc.example");
          assertEquals(anonymous.status, 401);
          await anonymous.body?.cancel();
          const auth_ = { authorization: `Bearer ${API_TOKEN}` };
          const res = await run.worker.fetch("/jwt-svid?audience=https://svc.example", {
            headers: auth_,
          });
          const svid = await res.json();
          assertEquals(res.status, 200, JSON.stringify(svid));
          const jwks = await (await fetch(`${auth.url}/.well-known/jwks.json`)).json();
          const { payload } = await jwtVerify(svid.jwt, createLocalJWKSet(jwks), {
            audience: "https://svc.example",
          });
          assertEquals(payload.sub, "spiffe://edge.example/bot/edge-bot");
          const x509 = await run.worker.fetch("/x509", { headers: auth_ });
          const creds = await x509.json();
          assertEquals(x509.status, 200);
          assertStringIncludes(creds.tls_cert, "BEGIN CERTIFICATE");
          assertEquals(creds.private_key, undefined, "the HTTP route must not hand out the key");
        },
      );

      await t.step("concurrent renewals share one join", async () => {
        const results = await Promise.all(Array.from({ length: 5 }, () => run.rpc.renew()));
        for (const r of results) assert(r.ok, JSON.stringify(r));
        const generations = new Set(results.map((r) => r.ok ? r.generation : -1));
        assertEquals([...generations], [2], "every caller must see the same single join");
        assertEquals((await run.rpc.readiness()).generation, 2);
      });
    } finally {
      await run.worker.stop();
    }

    await t.step("private keys rest sealed in the Durable Object's storage", async () => {
      assertEquals(await filesContaining(persistDir, "PRIVATE KEY"), []);
      assert(
        (await filesContaining(persistDir, "KEYBOUND-SEALED-V1")).length > 0,
        "nothing sealed found",
      );
    });

    await t.step(
      "a restart over the same storage refreshes without consuming a recovery",
      async () => {
        run = await startBot(script.path, auth, persistDir, vars);
        try {
          const before = await run.rpc.readiness();
          assertEquals(before.bot_instance_id, first.bot_instance_id);
          assertEquals(before.generation, 2);
          const r = await run.rpc.renew();
          assert(r.ok, JSON.stringify(r));
          assertEquals(r.bot_instance_id, first.bot_instance_id);
          assertEquals(r.generation, 3);
          assertEquals((await tokenStatus(auth, "edge-bot"))?.recovery_count, 1);
        } finally {
          await run.worker.stop();
        }
      },
    );

    await t.step("a wiped storage gets the refusal the token prescribes", async () => {
      // The token is bound: the server ignores the (used) registration secret and
      // challenges for the bound key, which a wiped bot no longer holds.
      await Deno.remove(persistDir, { recursive: true });
      await Deno.mkdir(persistDir);
      run = await startBot(script.path, auth, persistDir, vars);
      try {
        const r = await readyz(run.worker);
        assertEquals(r.status, 503);
        assertEquals(r.body.status, "unhealthy");
        assertStringIncludes(
          r.body.reason ?? "",
          "no matching key found for the challenged public key",
        );
        assertStringIncludes(r.body.reason ?? "", "(CHALLENGE_FAILED)");
        assertStringIncludes(r.body.reason ?? "", "token/edge-bot is bound to this host's key");
        const bound = (await tokenStatus(auth, "edge-bot"))?.bound_public_key ?? "";
        assertStringIncludes(r.body.reason ?? "", bound.split(" ").slice(0, 2).join(" "));
        assert(r.body.next_renewal !== null, "the retry alarm must be armed");
        assertEquals((await tokenStatus(auth, "edge-bot"))?.recovery_count, 1);
      } finally {
        await run.worker.stop();
      }
    });
  } finally {
    await Deno.remove(persistDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("BotIdentity in workerd: the alarm renews on schedule", async () => {
  await using auth = await startLoopbackAuth();
  const secret = await provisionBot(auth.api, "alarm-bot");
  await using script = await bundle(BOT_ENTRY);
  const persistDir = await Deno.makeTempDir({ prefix: "keybound-do-" });
  const run = await startBot(script.path, auth, persistDir, {
    TBOT_TOKEN: "alarm-bot",
    TBOT_REGISTRATION_SECRET: secret,
    TBOT_CREDENTIAL_TTL: "1h",
    TBOT_RENEWAL_INTERVAL: "1s",
  });
  try {
    const started = await run.rpc.start();
    assertEquals(started.generation, 1, JSON.stringify(started));
    // Only the alarm renews from here on: readiness() never joins.
    let now = started;
    for (let i = 0; i < 300 && (now.generation ?? 0) < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = await run.rpc.readiness();
    }
    assert((now.generation ?? 0) >= 3, `the alarm did not renew: ${JSON.stringify(now)}`);
    assertEquals(now.bot_instance_id, started.bot_instance_id);
    assertEquals(now.status, "healthy");
    assert(now.next_renewal !== null, "the alarm was not re-armed");
    const rearmedIn = Date.parse(now.next_renewal!) - Date.parse(now.last_renewal!);
    assert(rearmedIn >= 1000 * 6 / 7, `re-armed early: ${rearmedIn} ms`);
    assertEquals((await tokenStatus(auth, "alarm-bot"))?.recovery_count, 1);
  } finally {
    await run.worker.stop();
    await Deno.remove(persistDir, { recursive: true });
  }
});
