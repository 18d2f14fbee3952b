/**
 * A connection reset before the request was written (a balancer failing
 * over, an auth instance restarting with handshakes queued on its listener)
 * is sent again by Keybound itself: the request client's
 * resend (src/protocol/http_client.ts `resendingAfterReset`) for every API
 * call, and the same policy for the pin's unverified first contact. Real
 * auth service process over TLS, real tbot oneshot processes, a TCP proxy
 * that resets every other new connection after its ClientHello: each
 * connection tbot opens is reset once. Unlike ./runtime_resend_test.ts,
 * where the runtime's own HTTP client sends again, the runtime does not
 * resend here: without Keybound's resend the run fails.
 */
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { type KillWorld, oneshotYaml, startKillWorld, startTbot } from "./_kill_world.ts";
import { type HandshakeResettingProxy, startHandshakeResettingProxy } from "./_resetting_proxy.ts";

/** A TLS world with bot and token `reset`, its resetting proxy, and a config writer. */
async function withResetWorld(
  fn: (
    world: KillWorld,
    proxy: HandshakeResettingProxy,
    config: (name: string, server: string) => Promise<string>,
  ) => Promise<void>,
): Promise<void> {
  const world = await startKillWorld("keybound-reset-before-send-", { tls: true });
  const proxy = await startHandshakeResettingProxy(Number(new URL(world.auth.url).port));
  try {
    await world.createBot("reset");
    const secret = await world.createToken("reset", "reset");
    const storage = `${world.dir}/storage`;
    await fn(world, proxy, async (name, server) => {
      const path = `${world.dir}/${name}.yaml`;
      const caPin = world.auth.caPin;
      await Deno.writeTextFile(
        path,
        oneshotYaml({ server, token: "reset", storage, secret, caPin }),
      );
      return path;
    });
  } finally {
    await proxy.close();
    await world.close();
  }
}

const test = (name: string, fn: Parameters<typeof withResetWorld>[0]) =>
  Deno.test({
    name: `reset before send: ${name}`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => withResetWorld(fn),
  });

test(
  "the pin's first contact and the join are each reset once; exit 0",
  async (world, proxy, config) => {
    const run = await startTbot(await config("proxy", proxy.url)).done;
    const trace = `${proxy.log.join("\n")}\n${run.log}`;
    assertEquals(run.code, 0, trace);
    // Connection 1 was the first contact (node:tls), 3 the first API call (fetch).
    assert(proxy.resets() >= 2, `first contact and join were both reset\n${trace}`);
    await Deno.stat(`${world.dir}/storage/${STORAGE_FILES.hostCa}`);
    assertEquals(await world.locks(), []);
  },
);

test("a renewal whose connection is reset is sent again; exit 0", async (world, proxy, config) => {
  const first = await startTbot(await config("direct", world.auth.url)).done;
  assertEquals(first.code, 0, first.log);
  const before = await world.status("reset");

  // The host CA is saved: no first contact, the first connection is the renewal's.
  const run = await startTbot(await config("proxy", proxy.url)).done;
  const trace = `${proxy.log.join("\n")}\n${run.log}`;
  assertEquals(run.code, 0, trace);
  assertStringIncludes(run.log, "renewed the bot identity");
  assert(proxy.resets() >= 1, `the renewal's connection was reset\n${trace}`);
  const after = await world.status("reset");
  assertEquals(after.recovery_count, before.recovery_count, "no recovery consumed");
  assertEquals(await world.locks(), []);
});
