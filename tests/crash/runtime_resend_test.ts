/**
 * Review5 V1 end to end, real processes: the runtime's HTTP client sends a
 * join `continue` again by itself when the reused keep-alive connection it
 * went out on is reset after the server read it (and committed). The server
 * answers the copy `SESSION_INVALID` (the session's used-marker); the tbot
 * oneshot must resume the committed join in the same run and exit 0 — no
 * recovery consumed, no lock, and the next refresh an ordinary one.
 *
 * The copy is the runtime's (hyper's retry of a request on a reused
 * connection), not Keybound's: the request client resends only a reset
 * before the request was written, so this passes with that resend removed
 * (checked). ./reset_before_send_test.ts is the one that needs it.
 */
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { oneshotYaml, runTbotHere, startKillWorld, startTbot } from "./_kill_world.ts";
import { startResettingProxy } from "./_resetting_proxy.ts";

Deno.test({
  name: "runtime resend: a continue read twice after a reset; the oneshot resumes and exits 0",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const world = await startKillWorld("keybound-runtime-resend-");
    const proxy = await startResettingProxy(Number(new URL(world.auth.url).port));
    try {
      await world.createBot("resend");
      const secret = await world.createToken("resend", "resend");
      const storage = `${world.dir}/storage`;
      const direct = `${world.dir}/direct.yaml`;
      const viaProxy = `${world.dir}/proxy.yaml`;
      const yaml = (server: string) => oneshotYaml({ server, token: "resend", storage, secret });
      await Deno.writeTextFile(direct, yaml(world.auth.url));
      await Deno.writeTextFile(viaProxy, yaml(proxy.url));
      const first = await runTbotHere(direct);
      assertEquals(first.code, 0, first.log);
      const before = await world.status("resend");

      // The continue normally goes out on begin's kept-alive connection; should a loaded
      // runtime open a new one instead, nothing is reset and another refresh tries again.
      let run = { code: -1 as number | null, log: "" };
      let logFrom = 0;
      for (let i = 0; i < 3 && !proxy.fired(); i++) {
        logFrom = proxy.log.length;
        run = await startTbot(viaProxy).done;
        assertEquals(run.code, 0, `${proxy.log.join("\n")}\n${run.log}`);
      }
      const trace = `${proxy.log.join("\n")}\n${run.log}`;
      assert(proxy.fired(), `the proxy reset a reused connection after a continue\n${trace}`);
      const continues = proxy.log.slice(logFrom).filter((l) =>
        l.endsWith("POST /v1/join/bound-keypair/continue")
      );
      assertEquals(continues.length, 2, `the runtime sent the continue again\n${trace}`);
      assertStringIncludes(run.log, "resumed a join whose answer was lost");

      const after = await world.status("resend");
      assertEquals(after.recovery_count, before.recovery_count, "no recovery consumed");
      assertEquals(await world.locks(), []);
      await Deno.stat(`${storage}/${STORAGE_FILES.pendingJoin}`).then(
        () => assert(false, "the pending join was removed"),
        (e) => assert(e instanceof Deno.errors.NotFound, String(e)),
      );

      const next = await runTbotHere(direct);
      assertEquals(next.code, 0, next.log);
      assertStringIncludes(next.log, "renewed the bot identity");
      assertEquals(await world.locks(), []);
    } finally {
      await proxy.close();
      await world.close();
    }
  },
});
