/**
 * Every directory on the path of the front's socket, up to `/`, may be
 * changed only by root or the service's user (OpenSSH's StrictModes rule;
 * review-front M1, M2, S1 of session 12): a data directory under a
 * directory another user may write or owns is refused before anything is
 * made or written, a `--data-dir` that is a link is served from its real
 * path, one under the sticky /tmp is served. serveService in this process,
 * and the real `auth start` process; the attack run for real as `nobody`
 * (setpriv, python3).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { cannotActAsOthers, ignoreUnless } from "../_tools.ts";
import { asNobody, cannotAttack, filesIn, narrowedStart, NOBODY, refusedStart } from "./_front.ts";
import { serveService } from "../../runtime-adapters/deno/serve.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { silentLogger } from "../../src/util/log.ts";

/** A front in plain HTTP (a PROXY protocol balancer's), with its socket as TLS has it. */
const FRONT_PLAIN = ["--insecure-no-tls", "--proxy-protocol-from", "127.0.0.2"];

/** Linux only (owners, modes, Unix sockets). */
const ignore = Deno.build.os !== "linux";

/**
 * review-front M1, as `nobody`: finds the front's socket in /proc/net/unix,
 * moves the data directory aside, makes its own at the name and binds at
 * the same path; prints "bound", then the first request it receives.
 */
const HIJACK = `
import os, socket, sys
victim, marker = sys.argv[1], sys.argv[2]
path = [l.split()[-1] for l in open('/proc/net/unix') if marker in l and l.rstrip().endswith('.sock')][0]
os.rename(victim, victim + '.moved')
os.makedirs(os.path.dirname(path))
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen()
print('bound', flush=True)
c, _ = s.accept()
data = c.recv(65536)
c.sendall(b'HTTP/1.1 200 OK\\r\\ncontent-length: 9\\r\\nconnection: close\\r\\n\\r\\nhijacked\\n')
c.close()
print(data.decode(errors='replace'), flush=True)
`;

/** serveService answering "ok" behind a PROXY-trusting front, its socket in `data`/front. */
function serve(data: string) {
  return serveService({ fetch: () => new Response("ok") }, {
    hostname: "127.0.0.1",
    port: 0,
    proxyFrom: ["127.0.0.2"],
    socketDir: join(data, "front"),
    log: silentLogger,
  });
}

/** The one line refusing `--data-dir data` for `component` (its `fault`), as auth prints it. */
function refusedLine(data: string, component: string, fault: string): string {
  return `auth: error [CONFIG_INVALID]: --data-dir ${data}: ${component}, on its path, must be ` +
    "a directory that only root or this user may change, since it holds the cluster's CA keys " +
    "and the Unix socket of the server behind the TLS front lies below it: " +
    `${fault}: use a --data-dir whose directories, up to /, ` +
    "only root or this user may write (or fix the owner or mode named)\n";
}

/** DIR (0755) / shared (`mode`) / kb (0700, the data directory), and the attacker's script in DIR. */
async function scene(mode: number) {
  const dir = await Deno.makeTempDir({ prefix: "kb-front-anc-" });
  await Deno.chmod(dir, 0o755);
  const shared = join(dir, "shared");
  await Deno.mkdir(shared);
  await Deno.chmod(shared, mode);
  const data = join(shared, "kb");
  await Deno.mkdir(data, { mode: 0o700 });
  await Deno.writeTextFile(join(dir, "hijack.py"), HIJACK);
  return { dir, shared, data };
}

/**
 * HIJACK run as nobody against `data` (in `dir`'s scene), once it has bound
 * at the socket's path: stopping it gives what it printed after "bound",
 * the request it received if any.
 */
async function hijack(dir: string, data: string): Promise<() => Promise<string>> {
  const attacker = asNobody(
    ["/usr/bin/python3", join(dir, "hijack.py"), data, `${data}/front/`],
    { stdout: "piped", stderr: "inherit" },
  ).spawn();
  const lines = attacker.stdout.pipeThrough(new TextDecoderStream()).getReader();
  // What it printed; a chunk may end anywhere.
  let rest = "";
  const stop = async () => {
    try {
      attacker.kill();
    } catch { /* gone */ }
    for (let r = await lines.read(); !r.done; r = await lines.read()) rest += r.value;
    await attacker.status;
    return rest.startsWith("bound\n") ? rest.slice("bound\n".length) : rest;
  };
  try {
    while (!rest.includes("\n")) {
      const r = await lines.read();
      if (r.done) break;
      rest += r.value;
    }
    assertEquals(rest.slice(0, rest.indexOf("\n") + 1), "bound\n");
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

Deno.test({
  name:
    "serveService: a data directory whose parent another user may write is refused before anything is made in it",
  ignore,
  async fn() {
    // review-front M1: a start here let nobody take the front's connections (the test below).
    const { dir, shared, data } = await scene(0o777);
    try {
      const err = await serve(data).then(async (server) => {
        await server.shutdown();
        return undefined;
      }, (e: Error) => e);
      assert(err !== undefined, "started");
      assertEquals(
        err.message,
        `--data-dir ${data}: ${shared}, on its path, must be a directory that only root or this ` +
          "user may change, since it holds the cluster's CA keys and the Unix socket of the " +
          "server behind the TLS front lies below it: its mode is 0777: other users may write " +
          "it, and it is not sticky: use a --data-dir whose directories, up to /, only root or " +
          "this user may write (or fix the owner or mode named)",
      );
      assertEquals(filesIn(data), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "serveService: a directory above the data directory loosened after the start (0777): another user's socket at the path never gets a connection",
  ignore: ignoreUnless("front ancestor attack test", cannotAttack()),
  async fn() {
    // The walk at the start holds only while root and this user keep the path as it was: the
    // check before each connect sees the directory replaced and the heal refuses the new one.
    const { dir, shared, data } = await scene(0o755);
    const server = await serve(data);
    let rest: string;
    try {
      await Deno.chmod(shared, 0o777);
      const stop = await hijack(dir, data);
      try {
        const port = server.addr.port;
        // Dropped (the heal refuses nobody's directory), never passed to their socket.
        for (let i = 0; i < 3; i++) {
          const answer = await fetch(`http://127.0.0.1:${port}/`, {
            headers: { authorization: "Bearer SECRET" },
          }).then((r) => r.text(), () => "dropped");
          assertEquals(answer, "dropped");
        }
      } finally {
        rest = await stop();
      }
    } finally {
      await server.shutdown();
      // Also when an assertion failed: the attack leaves a 0777 directory behind.
      await Deno.remove(dir, { recursive: true });
    }
    // Bound at the path, and received nothing.
    assertEquals(rest, "");
  },
});

/** `auth start`'s command line under `deno task auth`'s own flags (deno.json), not -A. */
async function taskCommand(): Promise<string[]> {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const [, ...words] = (denoJson.tasks.auth as string).split(/\s+/);
  const entry = new URL(`../../${words.at(-1)}`, import.meta.url).pathname;
  return [Deno.execPath(), ...words.slice(0, -1), entry];
}

Deno.test({
  name:
    "auth start under the task's own flags: a connection dropped because the heal refused the directory is logged in auth's own lines, never Deno's --allow-all advice",
  ignore: ignoreUnless("front ancestor attack test", cannotAttack()),
  async fn() {
    // review-front2 S2: the unreachable path was under /dev/null, which Deno guards: under the
    // task's --allow-read --allow-write the front logged "Requires all access … run again with
    // the --allow-all flag" (tests ran -A and never saw it).
    const { dir, shared, data } = await scene(0o755);
    const auth = await spawnAuthService({
      dataDir: data,
      args: FRONT_PLAIN,
      command: await taskCommand(),
      captureLog: true,
    });
    let stopped: number | undefined;
    try {
      await Deno.chmod(shared, 0o777);
      const stop = await hijack(dir, data);
      let rest: string;
      try {
        const answer = await fetch(`${auth.url}/v1/ping`).then((r) => r.text(), () => "dropped");
        assertEquals(answer, "dropped");
      } finally {
        rest = await stop();
        stopped = await auth.stop();
      }
      assertEquals(rest, "");
      assertEquals(stopped, 0);
      const log = auth.log();
      assert(!/allow-all|NotCapable|Requires /.test(log), log);
      assertStringIncludes(log, `${NOBODY}`);
    } finally {
      if (stopped === undefined) await auth.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "serveService: a data directory given through a symbolic link of this user's (systemd StateDirectory with DynamicUser, a moved disk) is served from its real path",
  ignore,
  async fn() {
    // review-front M2: the lstat of the given path refused the link itself.
    const dir = await Deno.makeTempDir({ prefix: "kb-front-anc-" });
    try {
      await Deno.mkdir(join(dir, "real"), { mode: 0o700 });
      await Deno.symlink(join(dir, "real"), join(dir, "kb"));
      const server = await serve(join(dir, "kb"));
      try {
        assertEquals(await (await fetch(`http://127.0.0.1:${server.addr.port}/`)).text(), "ok");
        assertEquals(filesIn(join(dir, "real")), ["front"]);
      } finally {
        await server.shutdown();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start: a --data-dir that is a symbolic link serves, its files in the directory it names",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-front-anc-" });
    try {
      const real = join(dir, "private", "kb");
      await Deno.mkdir(real, { recursive: true, mode: 0o700 });
      await Deno.symlink("private/kb", join(dir, "kb"));
      const auth = await spawnAuthService({ dataDir: join(dir, "kb"), args: FRONT_PLAIN });
      try {
        const ping = await fetch(`${auth.url}/v1/ping`);
        assertEquals(ping.status, 200);
        await ping.body?.cancel();
        const files = filesIn(real);
        for (const f of ["admin-identity", "front", "keybound.kv"]) {
          assert(files.includes(f), files.join(" "));
        }
      } finally {
        assertEquals(await auth.stop(), 0);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start: a --data-dir under a directory others may write (0777, not sticky) or another user owns is refused in one line before anything is made or written",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-front-anc-" });
    try {
      const shared = join(dir, "shared");
      await Deno.mkdir(shared);
      await Deno.chmod(shared, 0o777);
      // Not made yet: the start must not make it.
      const fresh = join(shared, "kb");
      const first = await refusedStart(fresh, {});
      assertEquals(first.code, 1, first.stderr);
      assertEquals(
        first.stderr,
        refusedLine(
          fresh,
          shared,
          "its mode is 0777: other users may write it, and it is not sticky",
        ),
      );
      assertEquals(filesIn(shared), []);
      // There already: nothing written in it, its mode left alone.
      await Deno.mkdir(fresh, { mode: 0o750 });
      await Deno.chmod(fresh, 0o750);
      assertEquals((await refusedStart(fresh, {})).code, 1);
      assertEquals(filesIn(fresh), []);
      assertEquals((await Deno.stat(fresh)).mode! & 0o777, 0o750);
      if (cannotActAsOthers() !== undefined) return;
      // review-front S1: root on a data directory another user owns, refused before its
      // chmod and before the cluster is written in it.
      await Deno.chmod(shared, 0o755);
      await Deno.chown(fresh, NOBODY, NOBODY);
      const theirs = await refusedStart(fresh, {});
      assertEquals(theirs.code, 1, theirs.stderr);
      assertEquals(
        theirs.stderr,
        refusedLine(
          fresh,
          fresh,
          `it is owned by uid ${NOBODY}, not by root or this process's uid 0`,
        )
          .replace(`${fresh}: ${fresh}, on its path,`, fresh),
      );
      assertEquals(filesIn(fresh), []);
      assertEquals((await Deno.stat(fresh)).mode! & 0o777, 0o750);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "auth start: a --data-dir right in the sticky /tmp (root's, 1777) serves",
  ignore: ignore || ((Deno.statSync("/tmp").mode ?? 0) & 0o1777) !== 0o1777,
  async fn() {
    const data = `/tmp/kb-front-sticky-${crypto.randomUUID().slice(0, 8)}`;
    try {
      const auth = await spawnAuthService({ dataDir: data, args: FRONT_PLAIN });
      try {
        const ping = await fetch(`${auth.url}/v1/ping`);
        assertEquals(ping.status, 200);
        await ping.body?.cancel();
      } finally {
        assertEquals(await auth.stop(), 0);
      }
    } finally {
      await Deno.remove(data, { recursive: true });
    }
  },
});

Deno.test({
  name: "auth start under an --allow-sys without uid: one line naming the permission, nothing made",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-front-anc-" });
    try {
      const data = join(dir, "kb");
      const flags = { write: "--allow-write", sys: "--allow-sys=hostname" };
      const line = "auth: error [CONFIG_INVALID]: auth may not read the system's uid: its " +
        "--allow-sys does not name it: add uid to --allow-sys; auth checks who owns each " +
        "directory on the path of its data directory";
      const socket = " and of the socket of the server behind its TLS front";
      assertEquals(await narrowedStart(data, flags), { code: 1, stderr: `${line}${socket}\n` });
      // No front, no socket: the line names only what the start uses.
      assertEquals(await narrowedStart(data, flags, {}, ["--insecure-no-tls"]), {
        code: 1,
        stderr: `${line}\n`,
      });
      assertEquals(filesIn(dir), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
