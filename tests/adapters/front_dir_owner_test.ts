/**
 * The front's socket directory in the temporary directory (the fallback),
 * against another user (review-so M1, M2): real serveService processes,
 * run as root or as another user through `setpriv`, the other user's
 * directory made by `setpriv` too, requests over loopback TCP.
 */
import { assert, assertEquals } from "../_assert.ts";
import { bundleForUser } from "../_bundle.ts";
import { ignoreUnless } from "../_tools.ts";

const NOBODY = 65534;
/** A second user, not the child's. */
const OTHER = 1;

/** Why these tests cannot run here, or undefined. */
function cannotRun(): string | undefined {
  if (Deno.build.os !== "linux") return "needs Linux";
  if (Deno.uid() !== 0) return "needs root, to run processes as other users";
  try {
    Deno.statSync("/usr/bin/setpriv");
  } catch {
    return "needs /usr/bin/setpriv (util-linux)";
  }
  return undefined;
}
const ignore = ignoreUnless("front socket directory owner tests", cannotRun());

/** As `uid` (and its gid), no supplementary groups. */
function asUser(uid: number): string[] {
  return ["/usr/bin/setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups"];
}

/** A bundle of _front_dir_child.ts and a module cache, readable by any user; removed by `close`. */
async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "kb-front-owner-" });
  const { bundle, cache } = await bundleForUser(
    new URL("./_front_dir_child.ts", import.meta.url),
    dir,
    NOBODY,
  );
  /** A temporary directory for the child: `mode` (1777 as /tmp; 1733 listable by root only). */
  const tmp = async (name: string, mode: number) => {
    const path = `${dir}/${name}`;
    await Deno.mkdir(path);
    await Deno.chmod(path, mode);
    return path;
  };
  /** The child with TMPDIR `tmpdir`, as `uid` (undefined: this user). */
  const child = (tmpdir: string, uid?: number) =>
    new Deno.Command(uid === undefined ? Deno.execPath() : "/usr/bin/setpriv", {
      args: [
        ...(uid === undefined ? [] : [...asUser(uid).slice(1), Deno.execPath()]),
        "run",
        "--no-config",
        "--no-prompt",
        "-A",
        bundle,
      ],
      cwd: dir,
      clearEnv: true,
      env: { DENO_DIR: cache, HOME: dir, NO_COLOR: "1", TMPDIR: tmpdir },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  /**
   * As `uid`, a process that listens at `path` (a Unix socket), writes
   * `got N` to its stdout for each connection it accepts (N bytes read)
   * and answers `nobody`; it has printed `ready` once it listens.
   */
  const listener = async (uid: number, path: string) => {
    const code = `const l = Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });
      console.log("ready");
      for await (const c of l) {
        const n = await c.read(new Uint8Array(65536));
        console.log("got", n);
        await c.write(new TextEncoder().encode(
          "HTTP/1.1 200 OK\\r\\ncontent-length: 6\\r\\nconnection: close\\r\\n\\r\\nnobody",
        ));
        c.close();
      }`;
    const p = new Deno.Command("/usr/bin/setpriv", {
      args: [...asUser(uid).slice(1), Deno.execPath(), "eval", "--no-config", code],
      cwd: dir,
      clearEnv: true,
      env: { DENO_DIR: cache, HOME: dir, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("ready\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`listener exited: ${await new Response(p.stderr).text()}`);
      out += value;
    }
    /** Stops it; what it printed after `ready`. */
    const stopListener = async () => {
      p.kill("SIGTERM");
      await Promise.all([p.status, p.stderr.cancel()]);
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        out += value;
      }
      return out.slice(out.indexOf("ready\n") + "ready\n".length);
    };
    return stopListener;
  };
  const close = () => Deno.remove(dir, { recursive: true });
  return { dir, tmp, child, listener, close };
}

/** The port the child printed, or its error output if it exited first. */
async function portOf(p: Deno.ChildProcess): Promise<number | string> {
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      const status = await p.status;
      return `exited ${status.code}: ${await new Response(p.stderr).text()}`;
    }
    text += value;
  }
  reader.releaseLock();
  return JSON.parse(text).port;
}

const stopped = new WeakMap<Deno.ChildProcess, Promise<string>>();

/** Stops the child (SIGTERM) and returns its log; once. */
function stop(p: Deno.ChildProcess): Promise<string> {
  let log = stopped.get(p);
  if (log === undefined) {
    try {
      p.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    // Read already (by portOf) if it exited before printing its port.
    const text = p.stderr.locked ? Promise.resolve("") : new Response(p.stderr).text();
    log = Promise.all([p.status, text]).then(([, t]) => t);
    stopped.set(p, log);
  }
  return log;
}

/** The answer's body, or "" when the connection is dropped. */
async function get(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } });
    return await res.text();
  } catch {
    return "";
  }
}

async function run(cmd: string[]): Promise<void> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stderr: "piped" }).output();
  assertEquals(out.code, 0, `${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

function fallbackDirs(tmp: string): string[] {
  return [...Deno.readDirSync(tmp)].map((e) => e.name).filter((n) =>
    n.startsWith("keybound-front-")
  ).sort();
}

/**
 * The fallback directory deleted (a temp cleaner), and another user makes
 * one at its name before the heal: the heal listens in a new directory of
 * its own and leaves the other user's empty.
 */
async function takenOver(serverUid: number | undefined, otherUid: number, otherMode: string) {
  const ws = await workspace();
  const tmp = await ws.tmp("tmp", 0o1777);
  const p = ws.child(tmp, serverUid);
  try {
    const port = await portOf(p);
    assert(typeof port === "number", String(port));
    assertEquals(await get(port), "ok");
    const [mine] = fallbackDirs(tmp);
    await Deno.remove(`${tmp}/${mine}`, { recursive: true });
    await run([...asUser(otherUid), "mkdir", "-m", otherMode, `${tmp}/${mine}`]);
    // The connection that finds the socket gone may be dropped; the next ones are served.
    await get(port);
    // Before (other user's directory, server not root): chmod failed with EPERM at each
    // connection, and every request was dropped for good.
    for (let i = 0; i < 3; i++) assertEquals(await get(port), "ok");
    // Before (server root): it listened (and made its lock file) in the other user's directory,
    // who could move its socket aside and bind their own.
    assertEquals([...Deno.readDirSync(`${tmp}/${mine}`)].map((e) => e.name), []);
    assertEquals(Deno.lstatSync(`${tmp}/${mine}`).uid, otherUid);
    const now = fallbackDirs(tmp).filter((n) => n !== mine);
    assertEquals(now.length, 1, String(now));
    const info = Deno.lstatSync(`${tmp}/${now[0]}`);
    assertEquals([info.uid, info.mode! & 0o777], [serverUid ?? Deno.uid(), 0o700]);
    assertEquals(
      [...Deno.readDirSync(`${tmp}/${now[0]}`)].map((e) => e.name).sort(),
      ["http.1.sock", "http.lock"],
    );
    const log = await stop(p);
    assert(log.includes("listening in a new one"), log);
    // Shutdown removes the new directory; the other user's stays theirs.
    assertEquals(fallbackDirs(tmp), [mine]);
  } finally {
    await stop(p);
    await ws.close();
  }
}

Deno.test({
  name:
    "serveService as root: a heal does not listen in a fallback directory another user made at its name (review-so M1)",
  ignore,
  fn: () => takenOver(undefined, NOBODY, "0777"),
});

Deno.test({
  name:
    "serveService as a user: a heal is not stopped for good by a fallback directory another user made at its name (review-so M1)",
  ignore,
  fn: () => takenOver(NOBODY, OTHER, "0755"),
});

Deno.test({
  name:
    "serveService: a fallback start in a temporary directory it may write but not list (1733) serves, and leaves nothing at its stop (review-so M2)",
  ignore,
  async fn() {
    const ws = await workspace();
    const tmp = await ws.tmp("hard", 0o1733);
    const p = ws.child(tmp, NOBODY);
    try {
      // Before: PermissionDenied from the sweep's readdir, exit 1, and a directory with
      // http.lock left behind at each try.
      const port = await portOf(p);
      assert(typeof port === "number", String(port));
      assertEquals(await get(port), "ok");
      assertEquals(fallbackDirs(tmp).length, 1);
      const log = await stop(p);
      assertEquals(log.split("cannot list the temporary directory").length, 2, log);
      assertEquals(fallbackDirs(tmp), []);
    } finally {
      await stop(p);
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "serveService as root: the front does not connect into a socket another user bound in a fallback directory made again at its name (review-3 MUST-FIX 1)",
  ignore,
  async fn() {
    const ws = await workspace();
    const tmp = await ws.tmp("tmp", 0o1777);
    const p = ws.child(tmp);
    let stopListener: (() => Promise<string>) | undefined;
    try {
      const port = await portOf(p);
      assert(typeof port === "number", String(port));
      assertEquals(await get(port), "ok");
      const [mine] = fallbackDirs(tmp);
      // A temp cleaner deletes it; the other user makes it again and binds http.sock in it.
      await Deno.remove(`${tmp}/${mine}`, { recursive: true });
      await run([...asUser(NOBODY), "mkdir", "-m", "0755", `${tmp}/${mine}`]);
      stopListener = await ws.listener(NOBODY, `${tmp}/${mine}/http.sock`);
      // Before: the connect by path succeeded into their socket and no heal ran: `nobody`,
      // their process holding the request with its client token.
      for (let i = 0; i < 3; i++) assertEquals(await get(port), "ok");
      const got = await stopListener();
      stopListener = undefined;
      assertEquals(got, "");
      const log = await stop(p);
      assert(log.includes("listening in a new one"), log);
    } finally {
      await stopListener?.();
      await stop(p);
      await ws.close();
    }
  },
});
