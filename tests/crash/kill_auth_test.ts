/**
 * Issue #15: `kill -9` of the auth service while 20 clients join, in rounds
 * of every join kind; the service restarts on the same data directory and
 * every client's next run must continue: 0 locked out, no extra recovery.
 *
 * The clients are tbot runs (the `tbot start` code with the Deno platform)
 * in this process, each on its own directory storage, reaching the auth
 * service through a loopback proxy so the restarted service (on a new
 * port) is reached at the same address. The kill comes, at random, either
 * when the n-th join of the round has committed (that answer is then never
 * delivered: the service died before answering) or at a random instant
 * within the measured length of a round after its first `begin`.
 *
 * Measured numbers are printed as one JSON line (`kill-auth-summary`).
 */
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { assertEquals } from "../_assert.ts";
import { startDroppingProxy } from "./_dropping_proxy.ts";
import { oneshotYaml, runTbotHere, startKillWorld } from "./_kill_world.ts";

const CLIENTS = 20;
const ROUNDS = ["secret", "refresh", "recovery", "rotation", "refresh"] as const;

Deno.test({
  name: "kill -9 of the auth service while 20 clients join: none is locked out",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const started = performance.now();
    const world = await startKillWorld("keybound-kill-auth-");
    const proxy = startDroppingProxy(world.auth.url);
    const summary = { interrupted: 0, resumed: 0, cannotContinue: 0, rounds: [] as string[] };
    try {
      const names = Array.from({ length: CLIENTS }, (_, i) => `crash-auth-${i}`);
      const configs: string[] = [];
      for (const name of names) {
        await world.createBot(name);
        const secret = await world.createToken(name, name);
        const config = `${world.dir}/${name}.yaml`;
        const storage = `${world.dir}/${name}`;
        await Deno.writeTextFile(
          config,
          oneshotYaml({ server: proxy.url, token: name, storage, secret }),
        );
        configs.push(config);
      }
      let expectedCount = 0;
      let roundMs = 1000;
      for (const kind of ROUNDS) {
        if (kind === "secret" || kind === "recovery") expectedCount++;
        if (kind === "recovery") {
          for (const name of names) {
            for (const f of [STORAGE_FILES.tlsCert, STORAGE_FILES.key]) {
              await Deno.remove(`${world.dir}/${name}/${f}`).catch(() => {});
            }
          }
        }
        if (kind === "rotation") { for (const name of names) await world.api.rotateToken(name); }

        // The round the auth service dies in.
        const nth = 1 + Math.floor(Math.random() * CLIENTS);
        const atCommit = Math.random() < 0.5;
        let count = 0;
        let killed: Promise<void> | null = null;
        const kill = () => {
          try {
            Deno.kill(world.auth.pid, "SIGKILL");
          } catch {
            // Already dead.
          }
        };
        proxy.hooks = atCommit
          ? {
            onResult: () => {
              if (++count < nth) return true;
              kill();
              return false;
            },
          }
          : {
            onBegin: () => {
              killed ??= new Promise((r) => setTimeout(r, Math.random() * 0.8 * roundMs)).then(
                kill,
              );
            },
          };
        const round = await Promise.all(configs.map((c) => runTbotHere(c)));
        proxy.hooks = {};
        await (killed ?? Promise.resolve());
        const failed = round.filter((r) => r.code !== 0).length;
        summary.interrupted += failed;
        summary.rounds.push(
          `${kind}: killed ${atCommit ? `at commit ${nth}` : "at a random instant"}, ` +
            `${CLIENTS - failed} runs completed, ${failed} interrupted`,
        );
        await world.restart();
        proxy.setUpstream(world.auth.url);

        // Every client's next run continues on its own.
        let firstBegin = 0;
        proxy.hooks = { onBegin: () => void (firstBegin ||= performance.now()) };
        const next = await Promise.all(configs.map((c) => runTbotHere(c)));
        proxy.hooks = {};
        if (firstBegin) roundMs = performance.now() - firstBegin;
        for (const [i, r] of next.entries()) {
          if (r.code !== 0) {
            summary.cannotContinue++;
            throw new Error(`${names[i]} cannot continue after the ${kind} round:\n${r.log}`);
          }
          if (r.log.includes("resumed a join whose answer was lost")) summary.resumed++;
        }
        assertEquals(await world.locks(), [], `locks after the ${kind} round`);
        for (const name of names) {
          const st = await world.status(name);
          assertEquals(st.recovery_count, expectedCount, `${name} after the ${kind} round`);
          const bound = await Deno.readTextFile(
            `${world.dir}/${name}/${STORAGE_FILES.boundPublicKey}`,
          );
          assertEquals(bound.trim(), st.bound_public_key, `${name}: stored bound key`);
        }
      }
      console.log(
        "kill-auth-summary",
        JSON.stringify({
          seconds: Math.round((performance.now() - started) / 1000),
          clients: CLIENTS,
          ...summary,
        }),
      );
    } finally {
      await proxy.close();
      await world.close();
    }
  },
});
