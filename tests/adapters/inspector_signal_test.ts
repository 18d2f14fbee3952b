/**
 * SIGUSR1 never leaves a debugger open: Deno ≥ 2.9.2 starts the V8 inspector
 * on 127.0.0.1:9229 when a process receives it, so every Keybound entry point
 * refuses the signal by exiting (runtime-adapters/deno/entry/inspector_guard.ts).
 *
 * Each case signals a real process long after Deno's own listener is in place
 * (it arrives ~500 ms after start), then tries to connect to 9229 every few
 * milliseconds for 2 s. A control case shows the same probe does see the
 * inspector of an unguarded Deno process, so the refusal cases can fail.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { newCluster } from "../agent/_cluster.ts";
import { spawnTbot, tbotYaml } from "../tbot/_harness.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import {
  SIGUSR1_EXIT_CODE,
  SIGUSR1_REFUSAL,
} from "../../runtime-adapters/deno/entry/inspector_guard.ts";

const INSPECTOR_PORT = 9229;
const ROOT = new URL("../../", import.meta.url).pathname;

/** Why these tests cannot run here, or undefined. */
function precondition(): string | undefined {
  if (Deno.build.os === "windows") return "no SIGUSR1 on Windows";
  try {
    Deno.listen({ hostname: "127.0.0.1", port: INSPECTOR_PORT }).close();
  } catch {
    return `127.0.0.1:${INSPECTOR_PORT} is in use by another program`;
  }
  return undefined;
}
const skip = precondition();

/** Deno versions since 2.9.2 open the inspector on SIGUSR1. */
function denoOpensInspectorOnSignal(): boolean {
  const [major, minor, patch] = Deno.version.deno.split(".").map(Number);
  return major > 2 || (major === 2 && (minor > 9 || (minor === 9 && patch >= 2)));
}

function test(name: string, fn: () => Promise<void>) {
  Deno.test({
    name: skip ? `${name} (ignored: ${skip})` : name,
    ignore: skip !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connections 127.0.0.1:9229 accepted while polling every ~3 ms for `ms`. */
async function inspectorConnections(ms: number): Promise<number> {
  let accepted = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: INSPECTOR_PORT })).close();
      accepted++;
    } catch { /* refused: nothing listens */ }
    await sleep(3);
  }
  return accepted;
}

/** Waits until `since` is at least `ms` old, so Deno's own SIGUSR1 listener is in place. */
async function olderThan(since: number, ms: number) {
  await sleep(Math.max(0, since + ms - Date.now()));
}

/** Sends SIGUSR1 to `pid`; returns the connections 9229 accepted in the next 2 s. */
function signalAndProbe(pid: number): Promise<number> {
  Deno.kill(pid, "SIGUSR1");
  return inspectorConnections(2000);
}

/** The exit code, or "still running" if the process has not ended within 5 s. */
function exitCode(exited: Promise<number>): Promise<number | "still running"> {
  return Promise.race([exited, sleep(5000).then(() => "still running" as const)]);
}

test("SIGUSR1 control: an unguarded Deno process does open the inspector", async () => {
  if (!denoOpensInspectorOnSignal()) return; // nothing to show on this Deno version
  const started = Date.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "setInterval(() => {}, 1000)"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await olderThan(started, 1000);
    assert(
      await signalAndProbe(child.pid) > 0,
      "the probe saw no inspector: it could not detect one either",
    );
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

test("SIGUSR1: a tbot daemon exits at once and never opens the inspector", async () => {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const secret = (await cluster.createToken("example", "example"))!;
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix: "keybound-sigusr1-" });
  await Deno.writeTextFile(
    `${dir}/tbot.yaml`,
    tbotYaml({
      address: served.address,
      storage: `${dir}/bot`,
      pins: [cluster.pin],
      secret,
      extra: "diag_addr: 127.0.0.1:0",
    }),
  );
  const started = Date.now();
  const d = spawnTbot(["start", "-c", `${dir}/tbot.yaml`]);
  try {
    await d.waitForLog(/diagnostics listening/);
    await olderThan(started, 1000);
    assertEquals(await signalAndProbe(d.child.pid), 0, "the inspector port accepted a connection");
    assertEquals(await exitCode(d.exited()), SIGUSR1_EXIT_CODE, d.log());
    assertStringIncludes(d.log(), SIGUSR1_REFUSAL);
  } finally {
    try {
      d.kill("SIGKILL");
    } catch { /* already gone */ }
    await d.exited();
    await served.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

test("SIGUSR1: the auth service exits at once and never opens the inspector", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-sigusr1-" });
  const started = Date.now();
  const auth = await spawnAuthService({
    dataDir: `${dir}/data`,
    args: ["--insecure-no-tls"],
    captureLog: true,
  });
  try {
    await olderThan(started, 1000);
    assertEquals(await signalAndProbe(auth.pid), 0, "the inspector port accepted a connection");
    assertEquals(await exitCode(auth.exited), SIGUSR1_EXIT_CODE, auth.log());
    assertStringIncludes(auth.log(), SIGUSR1_REFUSAL);
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

test("SIGUSR1: tctl waiting on stdin exits at once and never opens the inspector", async () => {
  const started = Date.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}runtime-adapters/deno/entry/tctl.ts`, "create", "-"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    await olderThan(started, 1000);
    assertEquals(await signalAndProbe(child.pid), 0, "the inspector port accepted a connection");
    const code = await exitCode(child.status.then((s) => s.code));
    assertEquals(code, SIGUSR1_EXIT_CODE, await stderr);
    assertStringIncludes(await stderr, SIGUSR1_REFUSAL);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.stdin.close().catch(() => {});
    await child.status;
  }
});
