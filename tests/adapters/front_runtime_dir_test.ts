/**
 * Where the server behind the TLS front listens when the data directory's
 * `front` is too long for a Unix socket: a directory of XDG_RUNTIME_DIR (a
 * directory of this user, mode 0700), or for root one of /run/keybound;
 * never the shared temporary directory (its fallback there cost three
 * must-fix findings, review-3 MUST-FIX 1 and 2, review-so M1). Anything else
 * refuses the start with one line. serveService in this process, and the
 * real `auth start` process (as root, and as another user through
 * `setpriv`).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { bundleForUser } from "../_bundle.ts";
import { cannotActAsOthers, ignoreUnless } from "../_tools.ts";
import { exitOf, filesIn, narrowedStart, readToEnd, refusedStart } from "./_front.ts";
import { serveService } from "../../runtime-adapters/deno/serve.ts";
import { authStartCommand, spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { DATA_DIR_MAX, runtimeSocketDirName, socketDirFits } from "../../src/cli/auth/front_dir.ts";
import { toHex } from "../../src/util/encoding.ts";
import { createLogger, silentLogger } from "../../src/util/log.ts";

const NOBODY = 65534;
const AUTH_ENTRY = new URL("../../runtime-adapters/deno/entry/auth.ts", import.meta.url);

/** Linux only (sockets in directories, owners). */
const ignore = Deno.build.os !== "linux";

/**
 * A fresh private directory with `run` (a runtime directory, 0700) in it
 * and the path of a data directory whose `front` is too long for a socket
 * (`data`, not made).
 */
async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "kb-front-run-" });
  const run = join(dir, "run");
  await Deno.mkdir(run);
  await Deno.chmod(run, 0o700);
  const data = join(dir, "d".repeat(DATA_DIR_MAX + 1 - dir.length - 1));
  assertEquals(new TextEncoder().encode(data).length, DATA_DIR_MAX + 1);
  return { dir, run, data, close: () => Deno.remove(dir, { recursive: true }) };
}

/** serveService answering "ok" behind a PROXY-trusting front, its socket for `data`. */
function serve(data: string, runtimeDir: string | undefined) {
  return serveService({ fetch: () => new Response("ok") }, {
    hostname: "127.0.0.1",
    port: 0,
    proxyFrom: ["127.0.0.2"],
    socketDir: `${data}/front`,
    runtimeDir,
    log: silentLogger,
  });
}

/** What serveService threw (a start that should be refused). */
async function refusal(start: Promise<{ shutdown(): Promise<void> }>): Promise<Error> {
  try {
    const server = await start;
    await server.shutdown();
  } catch (err) {
    return err as Error;
  }
  throw new Error("started");
}

async function get(port: number): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${port}/`)).text();
}

Deno.test({
  name:
    "serveService: a data directory too long for the socket listens in XDG_RUNTIME_DIR/keybound-HASH, the same at each start, removed at shutdown",
  ignore,
  async fn() {
    const ws = await workspace();
    try {
      const server = await serve(ws.data, ws.run);
      let first: string;
      try {
        assertEquals(await get(server.addr.port), "ok");
        const names = filesIn(ws.run);
        assertEquals(names.length, 1);
        first = names[0];
        assertMatch(first, /^keybound-[0-9a-f]{16}$/);
        assertEquals(Deno.lstatSync(join(ws.run, first)).mode! & 0o777, 0o700);
        assertEquals(filesIn(join(ws.run, first)).map((n) => n.replace(/^.*\./, "")), [
          "lock",
          "sock",
        ]);
      } finally {
        await server.shutdown();
      }
      assertEquals(filesIn(ws.run), []);
      // Nothing in the data directory's place, nor in the temporary directory's.
      assertEquals(filesIn(ws.dir), ["run"]);
      const again = await serve(ws.data, ws.run);
      try {
        assertEquals(filesIn(ws.run), [first]);
      } finally {
        await again.shutdown();
      }
    } finally {
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "serveService: XDG_RUNTIME_DIR of mode 0777, a symbolic link or not absolute is refused, and nothing is made in it",
  ignore,
  async fn() {
    const ws = await workspace();
    try {
      await Deno.chmod(ws.run, 0o777);
      const open = await refusal(serve(ws.data, ws.run));
      assert(isKeyboundError(open) && open.code === "CONFIG_INVALID", String(open));
      assertStringIncludes(
        open.message,
        `XDG_RUNTIME_DIR ${ws.run} cannot hold it: its mode is 0777, not 0700`,
      );
      assertEquals(filesIn(ws.run), []);
      await Deno.chmod(ws.run, 0o700);
      await Deno.symlink(ws.run, join(ws.dir, "link"));
      const linked = await refusal(serve(ws.data, join(ws.dir, "link")));
      assertStringIncludes(linked.message, "it is a symbolic link");
      const relative = await refusal(serve(ws.data, "run"));
      assertStringIncludes(relative.message, "it is not an absolute path");
      assertEquals(filesIn(ws.run), []);
    } finally {
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "serveService as root: XDG_RUNTIME_DIR of another user is refused before anything in it is made or changed",
  ignore: ignoreUnless("runtime directory owner test", cannotActAsOthers()),
  async fn() {
    const ws = await workspace();
    try {
      await Deno.chown(ws.run, NOBODY, NOBODY);
      const err = await refusal(serve(ws.data, ws.run));
      assertStringIncludes(
        err.message,
        `it is owned by uid ${NOBODY}, not by this process's uid 0`,
      );
      // Root could make its directory there, but that user could then move its socket aside.
      assertEquals(filesIn(ws.run), []);
      // That user's directory at the socket directory's name (or, swapped in a loop, a link to
      // any directory: review-front S2) is neither chmod'ed nor given root's lock file: the
      // owner of XDG_RUNTIME_DIR is known to be wrong before the name is looked at.
      const digest = await crypto.subtle.digest(
        "SHA-256",
        new TextEncoder().encode(`${ws.data}/front`),
      );
      const theirs = join(ws.run, runtimeSocketDirName(toHex(new Uint8Array(digest)), ws.run));
      await Deno.mkdir(theirs);
      await Deno.chmod(theirs, 0o755);
      await Deno.chown(theirs, NOBODY, NOBODY);
      await refusal(serve(ws.data, ws.run));
      assertEquals([Deno.lstatSync(theirs).mode! & 0o777, filesIn(theirs)], [0o755, []]);
    } finally {
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "serveService as root without XDG_RUNTIME_DIR: the socket is in /run/keybound/HASH, removed at shutdown",
  ignore: ignoreUnless("/run/keybound test", Deno.uid() === 0 ? undefined : "needs root"),
  async fn() {
    const ws = await workspace();
    const before = new Set(existing("/run/keybound"));
    try {
      const server = await serve(ws.data, undefined);
      try {
        assertEquals(await get(server.addr.port), "ok");
        const made = existing("/run/keybound").filter((n) => !before.has(n));
        assertEquals(made.length, 1, made.join(" "));
        assertMatch(made[0], /^[0-9a-f]{16}$/);
        const info = Deno.lstatSync(`/run/keybound/${made[0]}`);
        assertEquals([info.uid, info.mode! & 0o777], [0, 0o700]);
        assertEquals(Deno.lstatSync("/run/keybound").mode! & 0o077, 0);
      } finally {
        await server.shutdown();
      }
      assertEquals(existing("/run/keybound").filter((n) => !before.has(n)), []);
      assertEquals(filesIn(ws.dir), ["run"]);
    } finally {
      await ws.close();
    }
  },
});

/** The names in `dir`, none if it is missing. */
function existing(dir: string): string[] {
  try {
    return filesIn(dir);
  } catch {
    return [];
  }
}

Deno.test({
  name:
    "serveService: the runtime directory's socket directory deleted, it is made again and the connection served",
  ignore,
  async fn() {
    const ws = await workspace();
    const server = await serve(ws.data, ws.run);
    try {
      const [name] = filesIn(ws.run);
      await Deno.remove(join(ws.run, name), { recursive: true });
      assertEquals(await get(server.addr.port), "ok");
      assertEquals(filesIn(ws.run), [name]);
      assertEquals(Deno.lstatSync(join(ws.run, name)).mode! & 0o777, 0o700);
    } finally {
      await server.shutdown();
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "auth start: a --data-dir too long for the front's socket serves with XDG_RUNTIME_DIR set to a private directory",
  ignore,
  async fn() {
    const ws = await workspace();
    const auth = await spawnAuthService({
      dataDir: ws.data,
      // A front in plain HTTP: a PROXY protocol balancer's, as TLS does.
      args: ["--insecure-no-tls", "--proxy-protocol-from", "127.0.0.2"],
      env: { XDG_RUNTIME_DIR: ws.run },
    });
    try {
      const ping = await fetch(`${auth.url}/v1/ping`);
      assertEquals(ping.status, 200);
      await ping.body?.cancel();
      const [name] = filesIn(ws.run);
      assertMatch(name, /^keybound-[0-9a-f]{16}$/);
      assertEquals(filesIn(join(ws.run, name)).filter((n) => n.endsWith(".sock")).length, 1);
      // No front in the data directory: its socket could not be reached there.
      assert(!filesIn(ws.data).includes("front"), filesIn(ws.data).join(" "));
    } finally {
      assertEquals(await auth.stop(), 0);
    }
    assertEquals(filesIn(ws.run), []);
    await ws.close();
  },
});

Deno.test({
  name:
    "auth start: XDG_RUNTIME_DIR of mode 0777 or of another user refuses the start in one line, before the cluster is made",
  ignore: ignoreUnless("runtime directory owner test", cannotActAsOthers()),
  async fn() {
    const ws = await workspace();
    try {
      await Deno.chmod(ws.run, 0o777);
      const open = await refusedStart(ws.data, { XDG_RUNTIME_DIR: ws.run });
      assertEquals(open.code, 1, open.stderr);
      assertEquals(
        open.stderr,
        `auth: error [CONFIG_INVALID]: --data-dir ${ws.data} is ${
          DATA_DIR_MAX + 1
        } bytes, over the ${DATA_DIR_MAX} that leave room in its front directory for the Unix ` +
          `socket of the server behind the TLS front, and XDG_RUNTIME_DIR ${ws.run} cannot hold ` +
          "it: its mode is 0777, not 0700: use a shorter --data-dir, or set XDG_RUNTIME_DIR to a " +
          "directory of this user (mode 0700) to hold the socket\n",
      );
      await Deno.chmod(ws.run, 0o700);
      await Deno.chown(ws.run, NOBODY, NOBODY);
      const theirs = await refusedStart(ws.data, { XDG_RUNTIME_DIR: ws.run });
      assertEquals(theirs.code, 1, theirs.stderr);
      assertEquals(theirs.stderr.split("\n").length, 2, theirs.stderr);
      assertStringIncludes(
        theirs.stderr,
        `it is owned by uid ${NOBODY}, not by this process's uid 0`,
      );
      // Refused before anything was written: no data directory, no cluster.
      assertEquals(filesIn(ws.dir), ["run"]);
      assertEquals(filesIn(ws.run), []);
    } finally {
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "auth start as a user: a --data-dir too long for the front's socket, without XDG_RUNTIME_DIR, refuses the start in one line",
  ignore: ignoreUnless("auth as another user", cannotActAsOthers()),
  async fn() {
    const ws = await workspace();
    try {
      const { bundle, cache } = await bundleForUser(AUTH_ENTRY, ws.dir, NOBODY);
      // The data directory's parent is this user's: the user may make theirs in it.
      await Deno.chown(ws.dir, NOBODY, NOBODY);
      const out = await exitOf(
        new Deno.Command("/usr/bin/setpriv", {
          args: [
            `--reuid=${NOBODY}`,
            `--regid=${NOBODY}`,
            "--clear-groups",
            ...authStartCommand({
              dataDir: ws.data,
              command: [Deno.execPath(), "run", "--no-config", "--unstable-kv", "-A", bundle],
            }),
          ],
          cwd: ws.dir,
          clearEnv: true,
          env: { DENO_DIR: cache, HOME: ws.dir, NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }),
      );
      const stderr = out.stderr;
      assertEquals(out.code, 1, stderr);
      assertEquals(
        stderr,
        `auth: error [CONFIG_INVALID]: --data-dir ${ws.data} is ${
          DATA_DIR_MAX + 1
        } bytes, over the ${DATA_DIR_MAX} that leave room in its front directory for the Unix ` +
          "socket of the server behind the TLS front; XDG_RUNTIME_DIR is not set, and only root " +
          "may use /run/keybound: use a shorter --data-dir, or set XDG_RUNTIME_DIR to a " +
          "directory of this user (mode 0700) to hold the socket\n",
      );
      // Before session 12: it served from a directory in /tmp. Nothing written now.
      assert(!filesIn(ws.dir).includes(ws.data.split("/").pop()!), filesIn(ws.dir).join(" "));
    } finally {
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "serveService: a socket directory whose parent other users may write, or (root) another user's, is refused",
  ignore,
  async fn() {
    const ws = await workspace();
    try {
      const socketDir = join(ws.dir, "front");
      await Deno.chmod(ws.dir, 0o777);
      const open = await refusal(serve(ws.dir, undefined));
      assert(isKeyboundError(open) && open.code === "CONFIG_INVALID", String(open));
      assertEquals(
        open.message,
        `--data-dir ${ws.dir} must be a directory that only root or this user may change, ` +
          "since it holds the cluster's CA keys and the Unix socket of the server behind the " +
          "TLS front lies below it: its mode is 0777: other users may write it, and it is not sticky: use a --data-dir whose " +
          "directories, up to /, only root or this user may write (or fix the owner or mode named)",
      );
      // What the start made is gone again.
      assertEquals(filesIn(ws.dir), ["run"]);
      if (cannotActAsOthers() !== undefined) return;
      // Root in a data directory another user owns: that user could move the socket aside.
      await Deno.chmod(ws.dir, 0o700);
      await Deno.chown(ws.dir, NOBODY, NOBODY);
      const theirs = await refusal(serve(ws.dir, undefined));
      assertStringIncludes(
        theirs.message,
        `it is owned by uid ${NOBODY}, not by root or this process's uid 0`,
      );
      assertEquals(filesIn(ws.dir), ["run"]);
      // Root, and a front of another user's in its own data directory.
      await Deno.chown(ws.dir, 0, 0);
      await Deno.mkdir(socketDir, { mode: 0o700 });
      await Deno.chown(socketDir, NOBODY, NOBODY);
      const front = await refusal(serve(ws.dir, undefined));
      assertEquals(
        front.message,
        `${socketDir}, the directory of the server behind the TLS front (front in --data-dir ` +
          `${ws.dir}), must be this user's: it is owned by uid ${NOBODY}, not by this ` +
          "process's uid 0: remove it, and the next start makes it",
      );
    } finally {
      await ws.close();
    }
  },
});

Deno.test("front_dir: a --data-dir of 64 bytes holds the socket in its front, 65 do not (docs/operations.md)", () => {
  assertEquals(DATA_DIR_MAX, 64);
  const at = (n: number) => `/${"d".repeat(n - 1)}/front`;
  assert(socketDirFits(at(64)));
  assert(!socketDirFits(at(65)));
  // The longest socket name, with a heal's generation, at the longest directory: 107 bytes.
  assertEquals(
    new TextEncoder().encode(`${at(64)}/4194304-0123456789abcdef.999999.sock`).length,
    107,
  );
});

/** The status line of a GET on a new connection to `port`; "" if the connection is dropped. */
async function statusOnNewConnection(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
  );
  const answer = await readToEnd(conn);
  conn.close();
  return answer.split("\r\n")[0];
}

Deno.test({
  name:
    "serveService as root: its data directory deleted and made again by another user, a heal does not listen in it",
  ignore: ignoreUnless("socket directory owner test", cannotActAsOthers()),
  async fn() {
    const ws = await workspace();
    const data = join(ws.dir, "data");
    await Deno.mkdir(data, { mode: 0o700 });
    const lines: string[] = [];
    const server = await serveService({ fetch: () => new Response("ok") }, {
      hostname: "127.0.0.1",
      port: 0,
      proxyFrom: ["127.0.0.2"],
      socketDir: `${data}/front`,
      log: createLogger({ format: "json", write: (l) => lines.push(l) }),
    });
    try {
      const port = server.addr.port;
      assertEquals(await statusOnNewConnection(port), "HTTP/1.1 200 OK");
      // Gone whole (only root could, here), and another user makes a directory at its name that
      // anyone may write.
      await Deno.remove(data, { recursive: true });
      await Deno.mkdir(data);
      await Deno.chmod(data, 0o777);
      await Deno.chown(data, NOBODY, NOBODY);
      for (let i = 0; i < 3; i++) assertEquals(await statusOnNewConnection(port), "");
      // Before session 12: `front` made again in it, where that user could move the socket aside.
      assertEquals(filesIn(data), []);
      const failed = lines.map((l) => JSON.parse(l)).filter((l) =>
        l.msg.includes("cannot listen again")
      );
      assertEquals(failed.length, 1, lines.join("\n"));
      assertEquals(
        failed[0].detail,
        `not listening in ${data} again: it is owned by uid ${NOBODY}, not by root or this ` +
          "process's uid 0",
      );
      await Deno.chmod(data, 0o700);
      assertEquals(await statusOnNewConnection(port), "");
      assertEquals(filesIn(data), []);
      // This user's and private again: the next connection heals and is served.
      await Deno.chown(data, 0, 0);
      assertEquals(await statusOnNewConnection(port), "HTTP/1.1 200 OK");
      assertEquals(filesIn(data), ["front"]);
    } finally {
      await server.shutdown();
      await ws.close();
    }
  },
});

Deno.test({
  name:
    "auth start under a --allow-write without /run/keybound: a --data-dir too long for the socket is refused in one line naming the permission",
  ignore: ignoreUnless("auth as root", Deno.uid() === 0 ? undefined : "needs root"),
  async fn() {
    const ws = await workspace();
    try {
      const out = await narrowedStart(
        ws.data,
        { write: `--allow-write=${ws.dir}`, sys: "--allow-sys=hostname,uid" },
        { XDG_RUNTIME_DIR: "" },
      );
      assertEquals(out.code, 1, out.stderr);
      assertEquals(out.stderr.split("\n").length, 2, out.stderr);
      assertStringIncludes(
        out.stderr,
        "XDG_RUNTIME_DIR is not set, and /run/keybound cannot hold it: auth may not write " +
          "/run/keybound: its --allow-write does not name it",
      );
      assertEquals(filesIn(ws.dir), ["run"]);
    } finally {
      await ws.close();
    }
  },
});
