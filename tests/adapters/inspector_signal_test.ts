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
import { spawnTbot } from "../tbot/_harness.ts";
import { servedBot } from "../tbot/_served_bot.ts";
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

/**
 * Port 9229 is one per machine, and this file may run in several test runs
 * at once (other worktrees, other engineers): each case holds an exclusive
 * lock on a file in the temporary directory, so one run's control inspector
 * is never taken for another run's leak.
 */
async function lockInspectorPort(): Promise<AsyncDisposable> {
  const path = `${Deno.env.get("TMPDIR") ?? "/tmp"}/keybound-test-inspector-9229.lock`;
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o666 });
  await file.lock(true);
  return {
    async [Symbol.asyncDispose]() {
      await file.unlock();
      file.close();
    },
  };
}

function test(name: string, fn: () => Promise<void>) {
  Deno.test({
    name: skip ? `${name} (ignored: ${skip})` : name,
    ignore: skip !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await using _lock = await lockInspectorPort();
      await fn();
    },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Who listens on 9229 right now: `pid` (its file descriptors hold the
 * listening socket), another process, or nobody known (already gone).
 * Linux only; elsewhere every listener counts as `pid`'s.
 */
function inspectorOwner(pid: number): "ours" | "foreign" | "unknown" {
  const port = `:${INSPECTOR_PORT.toString(16).toUpperCase().padStart(4, "0")}`;
  let inode: string | undefined;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f[1]?.endsWith(port) && f[3] === "0A") inode = f[9]; // 0A: LISTEN
      }
    } catch { /* no procfs */ }
  }
  if (inode === undefined) return "unknown";
  try {
    for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
      if (Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`) === `socket:[${inode}]`) return "ours";
    }
  } catch {
    return "unknown";
  }
  return "foreign";
}

/**
 * Connections 127.0.0.1:9229 accepted while polling every ~3 ms for `ms`
 * that were (or may have been) `pid`'s; another process's listener — say,
 * the control case of a test run in another worktree — is not counted.
 */
async function inspectorConnections(pid: number, ms: number): Promise<number> {
  let accepted = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: INSPECTOR_PORT });
      if (inspectorOwner(pid) !== "foreign") accepted++;
      conn.close();
    } catch { /* refused: nothing listens */ }
    await sleep(3);
  }
  return accepted;
}

/** Waits until `since` is at least `ms` old, so Deno's own SIGUSR1 listener is in place. */
async function olderThan(since: number, ms: number) {
  await sleep(Math.max(0, since + ms - Date.now()));
}

/** Sends SIGUSR1 to `pid`; returns the connections its inspector accepted in the next 2 s. */
function signalAndProbe(pid: number): Promise<number> {
  Deno.kill(pid, "SIGUSR1");
  return inspectorConnections(pid, 2000);
}

/** The exit code, or "still running" if the process has not ended within 5 s. */
function exitCode(exited: Promise<number>): Promise<number | "still running"> {
  return Promise.race([exited, sleep(5000).then(() => "still running" as const)]);
}

test("SIGUSR1 control: an unguarded Deno process does open the inspector", async () => {
  if (!denoOpensInspectorOnSignal()) return; // nothing to show on this Deno version
  // The child says when it has run 1 s by its own clock: Deno's listener is in place by then.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "setTimeout(() => console.log('up'), 1000); setInterval(() => {}, 1000)"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    await child.stdout.pipeThrough(new TextDecoderStream()).getReader().read();
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
  await using bot = await servedBot("keybound-sigusr1-");
  await bot.writeConfig({ storage: `${bot.dir}/bot`, extra: "diag_addr: 127.0.0.1:0" });
  const started = Date.now();
  const d = spawnTbot(["start", "-c", bot.config]);
  try {
    await d.waitForLog(/diagnostics listening/);
    await olderThan(started, 1000);
    const accepted = await signalAndProbe(d.child.pid);
    const code = await exitCode(d.exited());
    assertEquals(accepted, 0, `the inspector port accepted connections; tbot's log:\n${d.log()}`);
    assertEquals(code, SIGUSR1_EXIT_CODE, d.log());
    assertStringIncludes(d.log(), SIGUSR1_REFUSAL);
  } finally {
    try {
      d.kill("SIGKILL");
    } catch { /* already gone */ }
    await d.exited();
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
    const accepted = await signalAndProbe(auth.pid);
    const code = await exitCode(auth.exited);
    assertEquals(accepted, 0, `the inspector port accepted connections; the log:\n${auth.log()}`);
    assertEquals(code, SIGUSR1_EXIT_CODE, auth.log());
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
    const accepted = await signalAndProbe(child.pid);
    const code = await exitCode(child.status.then((s) => s.code));
    assertEquals(accepted, 0, `the inspector port accepted connections; stderr:\n${await stderr}`);
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
