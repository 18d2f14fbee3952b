/**
 * Issue #15, randomised half: real tbot processes killed with SIGKILL at
 * random instants of each join kind, each followed by a normal run that must
 * continue on its own — no lock, no extra recovery. One auth process, the
 * five kinds run concurrently, oneshot runs.
 *
 * The kill instant is drawn per run: in a third of the runs exactly when the
 * server has committed and its answer is on the way (the answer is then
 * never delivered); otherwise uniformly within the measured length of a join
 * after its `begin` reaches the proxy in front of the auth service (so the
 * kill lands while tbot answers, waits, or writes its result). After half of
 * the kills at a commit, a second run is killed when its resume's answer is
 * ready (that answer is lost too), so the next run resumes a second time
 * with the same claim. Runs whose
 * kill came too late (tbot had exited) are counted but not as kills; each
 * kind repeats until it has `KEYBOUND_KILL_RUNS` (default 60) killed runs.
 *
 * Measured numbers are printed as one JSON line (`kill-tbot-summary`).
 */
import { DirectoryStorage } from "../../runtime-adapters/deno/dir_storage.ts";
import { createStoredKeypair } from "../../src/agent/client_state.ts";
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assertEquals } from "../_assert.ts";
import { startDroppingProxy } from "./_dropping_proxy.ts";
import {
  type KillWorld,
  oneshotYaml,
  runTbotHere,
  startKillWorld,
  startTbot,
} from "./_kill_world.ts";

const RUNS = Number(Deno.env.get("KEYBOUND_KILL_RUNS") ?? "60");
const KINDS = ["secret", "preregistered", "refresh", "recovery", "rotation"] as const;
type Kind = typeof KINDS[number];

/** What one kind measured. */
interface LaneReport {
  kind: Kind;
  trials: number;
  killed: number;
  killedAtCommit: number;
  killedInResume: number;
  finishedBeforeKill: number;
  resumed: number;
  cannotContinue: number;
  locks: number;
  extraRecoveries: number;
  failures: string[];
  killedMs: number;
  normalMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

async function lane(world: KillWorld, kind: Kind): Promise<LaneReport> {
  const r: LaneReport = {
    kind,
    trials: 0,
    killed: 0,
    killedAtCommit: 0,
    killedInResume: 0,
    finishedBeforeKill: 0,
    resumed: 0,
    cannotContinue: 0,
    locks: 0,
    extraRecoveries: 0,
    failures: [],
    killedMs: 0,
    normalMs: 0,
  };
  const proxy = startDroppingProxy(world.auth.url);
  const bot = `crash-${kind}`;
  const dir = `${world.dir}/${kind}`;
  await Deno.mkdir(dir);
  await world.createBot(bot);
  const config = `${dir}/tbot.yaml`;
  const spans: number[] = [];

  // A run with no kill (in this process, like the binary but without a
  // process start); records how long a join takes from its `begin`.
  const normalRun = async () => {
    let began = 0;
    proxy.hooks = { onBegin: () => void (began ||= performance.now()) };
    const run = await runTbotHere(config);
    proxy.hooks = {};
    if (began && run.code === 0) spans.push(performance.now() - began);
    return run;
  };

  const longLived = kind === "refresh" || kind === "recovery" || kind === "rotation";
  let token = bot;
  let storage = `${dir}/storage`;
  if (longLived) {
    const secret = await world.createToken(token, bot);
    await Deno.writeTextFile(config, oneshotYaml({ server: proxy.url, token, storage, secret }));
    const first = await normalRun();
    if (first.code !== 0) throw new Error(`${kind}: the first join failed:\n${first.log}`);
  }
  let expectedCount = longLived ? 1 : 0;

  try {
    for (let i = 0; r.killed < RUNS && i < RUNS * 3; i++) {
      r.trials++;
      // Prepare the state this kind starts from.
      if (!longLived) {
        token = `${bot}-${i}`;
        storage = `${dir}/storage-${i}`;
        let secret: string | undefined;
        if (kind === "preregistered") {
          const st = new DirectoryStorage(storage);
          await st.init();
          const pub = await createStoredKeypair(st, silentLogger);
          await world.createToken(token, bot, { onboarding: { initial_public_key: pub } });
        } else {
          secret = await world.createToken(token, bot);
        }
        await Deno.writeTextFile(
          config,
          oneshotYaml({ server: proxy.url, token, storage, secret }),
        );
        expectedCount = 1;
      } else if (kind === "recovery") {
        // No certificate: the run must recover with the bound key and join state.
        for (const f of [STORAGE_FILES.tlsCert, STORAGE_FILES.key]) {
          await Deno.remove(`${storage}/${f}`).catch(() => {});
        }
        expectedCount++;
      } else if (kind === "rotation") {
        await world.api.rotateToken(token);
      }

      // The run that is killed.
      const window = Math.max(40, 1.1 * median(spans.length ? spans : [300]));
      const atCommit = Math.random() < 1 / 3;
      const tbot = startTbot(config);
      let timer: ReturnType<typeof setTimeout> | undefined;
      let killedAtCommit = false;
      proxy.hooks = atCommit
        ? {
          onResult: async () => {
            killedAtCommit = true;
            tbot.kill();
            await tbot.done;
            return false;
          },
        }
        : { onBegin: () => void (timer ??= setTimeout(tbot.kill, Math.random() * window)) };
      const t0 = performance.now();
      const killedRun = await tbot.done;
      r.killedMs += performance.now() - t0;
      clearTimeout(timer);
      proxy.hooks = {};
      if (killedRun.signal === "SIGKILL") {
        r.killed++;
        if (killedAtCommit) r.killedAtCommit++;
      } else {
        r.finishedBeforeKill++;
      }
      if (killedAtCommit && Math.random() < 0.5) {
        // Killed again, while its resume's answer is on the way.
        const again = startTbot(config);
        proxy.hooks = {
          onResumeResult: async () => {
            again.kill();
            await again.done;
            return false;
          },
        };
        if ((await again.done).signal === "SIGKILL") r.killedInResume++;
        proxy.hooks = {};
      }

      // The next run must continue on its own.
      const t1 = performance.now();
      const next = await normalRun();
      r.normalMs += performance.now() - t1;
      if (next.code !== 0) {
        r.cannotContinue++;
        r.failures.push(`run ${i}: ${next.log.trim().split("\n").pop()}`);
      }
      if (next.log.includes("resumed a join whose answer was lost")) r.resumed++;
      const locks = (await world.locks()).filter((l) =>
        l.spec.target.join_token === token || l.spec.target.user === `bot-${bot}`
      );
      if (locks.length > 0) {
        r.locks++;
        r.failures.push(`run ${i}: locked: ${locks[0].spec.message}`);
        break;
      }
      const status = await world.status(token);
      if (status.recovery_count !== expectedCount) {
        r.extraRecoveries += status.recovery_count - expectedCount;
        r.failures.push(
          `run ${i}: recovery_count ${status.recovery_count}, expected ${expectedCount}`,
        );
        expectedCount = status.recovery_count;
      }
      const bound = (await Deno.readTextFile(`${storage}/${STORAGE_FILES.boundPublicKey}`)).trim();
      if (next.code === 0 && bound !== status.bound_public_key) {
        r.failures.push(`run ${i}: the stored bound key is not the token's`);
      }
      if (r.cannotContinue > 0) break;
    }
  } finally {
    await proxy.close();
  }
  return r;
}

Deno.test({
  name: "kill -9 of tbot at random instants of every join kind: every next run continues",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const started = performance.now();
    const world = await startKillWorld("keybound-kill-tbot-");
    try {
      const reports = await Promise.all(KINDS.map((k) => lane(world, k)));
      console.log(
        "kill-tbot-summary",
        JSON.stringify({ seconds: Math.round((performance.now() - started) / 1000), reports }),
      );
      for (const r of reports) {
        assertEquals(r.failures, [], `${r.kind}: ${JSON.stringify(r)}`);
        assertEquals(r.cannotContinue, 0);
        assertEquals(r.locks, 0);
        assertEquals(r.extraRecoveries, 0);
        assertEquals(r.killed >= RUNS, true, `${r.kind}: only ${r.killed} killed runs`);
      }
      assertEquals(await world.locks(), []);
    } finally {
      await world.close();
    }
  },
});
