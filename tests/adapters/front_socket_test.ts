/**
 * The server behind the public front on a Unix socket (serve.ts's
 * serveService): in a private directory, 0700 whatever the umask, removed
 * at shutdown; each request carries its connection's token in a header the
 * front adds, which names its client to the server: a client sending the
 * header itself names no one; a request on the socket without a token the
 * front gave is refused.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { missingTools } from "../_tools.ts";
import { filesIn, readToEnd, serveOk, serverPair } from "./_front.ts";
import { serveService } from "../../runtime-adapters/deno/serve.ts";
import { FRONT_CLIENT_HEADER } from "../../runtime-adapters/deno/tls_front.ts";
import { createLogger, silentLogger } from "../../src/util/log.ts";

const NEEDS_OPENSSL = missingTools("openssl");
const enc = (s: string) => new TextEncoder().encode(s);

Deno.test({
  name: "serveService: a client's own client-token header passes for no one",
  ignore: NEEDS_OPENSSL !== undefined,
  async fn() {
    const { ca, cert, key } = await serverPair();
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const server = await serveService({
      fetch: (_r: Request, env: { remoteAddr?: string }) => Response.json({ addr: env.remoteAddr }),
    }, {
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key },
      socketDir: `${parent}/front`,
      log: silentLogger,
    });
    const dir = `${parent}/front`;
    try {
      assertEquals(Deno.statSync(dir).mode! & 0o777, 0o700);
      // Before the front's line and after it: a guessed token, an address,
      // nothing; none names a client, and a second value is refused whatever it is.
      for (const forged of [undefined, "00112233445566778899aabbccddeeff", "192.0.2.9:1", ""]) {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port: server.addr.port,
          caCerts: [ca],
        });
        const client = `127.0.0.1:${(conn.localAddr as Deno.NetAddr).port}`;
        const own = forged === undefined ? "" : `${FRONT_CLIENT_HEADER}: ${forged}\r\n`;
        await conn.write(
          enc(`GET / HTTP/1.1\r\n${own}host: x\r\n${own}connection: close\r\n\r\n`),
        );
        const answer = await readToEnd(conn);
        conn.close();
        if (forged !== undefined) {
          assert(answer.startsWith("HTTP/1.1 400"), answer);
          continue;
        }
        assert(answer.startsWith("HTTP/1.1 200"), answer);
        assertEquals(JSON.parse(answer.split("\r\n\r\n")[1]), { addr: client });
      }
      // Straight to the socket (this user may), with no line from the front.
      const [socket] = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".sock"));
      const direct = await Deno.connect({ transport: "unix", path: `${dir}/${socket.name}` });
      await direct.write(enc(
        `GET / HTTP/1.1\r\nhost: x\r\n${FRONT_CLIENT_HEADER}: x 192.0.2.9:1\r\nconnection: close\r\n\r\n`,
      ));
      const refused = await readToEnd(direct);
      direct.close();
      assert(refused.startsWith("HTTP/1.1 400"), refused);
    } finally {
      await server.shutdown();
    }
    // The private directory goes with the server.
    assertEquals([...Deno.readDirSync(parent)], []);
    await Deno.remove(parent);
  },
});

/** A child serving "ok" through serveService with its socket in DIR, under `umask`: prints its port. */
function child(dir: string, umask = "0022") {
  const source = `
import { serveService } from ${
    JSON.stringify(new URL("../../runtime-adapters/deno/serve.ts", import.meta.url).href)
  };
import { silentLogger } from ${
    JSON.stringify(new URL("../../src/util/log.ts", import.meta.url).href)
  };
const server = await serveService({ fetch: () => new Response("ok") }, {
  hostname: "127.0.0.1", port: 0, proxyFrom: ["127.0.0.2"], socketDir: ${JSON.stringify(dir)},
  log: silentLogger,
});
console.log(JSON.stringify({ port: server.addr.port }));
await server.finished;
`;
  return new Deno.Command("sh", {
    args: ["-c", `umask ${umask} && exec "$0" eval --ext=ts "$1"`, Deno.execPath(), source],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The port the child printed, or its error output if it exited first. */
async function portOf(process: Deno.ChildProcess): Promise<number | string> {
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      const status = await process.status;
      const err = await new Response(process.stderr).text();
      return `exited ${status.code}: ${err}`;
    }
    text += value;
  }
  reader.releaseLock();
  return JSON.parse(text).port;
}

async function get(port: number): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${port}/`)).text();
}

Deno.test({
  name: "serveService: the socket's directory is 0700 under a umask that would leave it unusable",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    // 0277: a directory made 0700 would be 0500, where no socket can be made.
    const p = child(`${parent}/front`, "0277");
    try {
      const port = await portOf(p);
      assert(typeof port === "number", String(port));
      assertEquals(Deno.statSync(`${parent}/front`).mode! & 0o777, 0o700);
      assertEquals(await get(port), "ok");
    } finally {
      p.kill("SIGKILL");
      await p.status;
      await p.stderr.cancel();
      await Deno.remove(parent, { recursive: true });
    }
  },
});

Deno.test({
  name: "serveService: processes share the socket directory; a killed one's socket is swept",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const dir = `${parent}/front`;
    const started: Deno.ChildProcess[] = [];
    const start = async () => {
      const p = child(dir);
      started.push(p);
      const port = await portOf(p);
      assert(typeof port === "number", String(port));
      return { p, port, files: filesOf(dir, p.pid) };
    };
    try {
      const first = await start();
      // Two auth processes may share a data directory: each its own socket.
      const second = await start();
      assertEquals(await get(first.port), "ok");
      assertEquals(await get(second.port), "ok");
      first.p.kill("SIGKILL");
      await first.p.status;
      // Killed: its socket and lock file stay behind, and a heal's
      // generation socket (review-ff SF2) stands for one it had. Made old,
      // as a leftover is; the live one's too, which must stay.
      const [, firstSocket] = first.files;
      Deno.writeFileSync(`${dir}/${firstSocket.replace(/\.sock$/, ".3.sock")}`, new Uint8Array());
      ageAll(dir);
      const third = await start();
      assertEquals(await get(third.port), "ok");
      assertEquals(filesIn(dir), [...second.files, ...filesOf(dir, third.p.pid)].sort());
      assertEquals(await get(second.port), "ok");
    } finally {
      await stopAll(started);
      await Deno.remove(parent, { recursive: true });
    }
  },
});

/** The socket and lock file of process `pid` in `dir` (one of each, checked). */
function filesOf(dir: string, pid: number): string[] {
  const own = filesIn(dir).filter((n) => n.startsWith(`${pid}-`));
  assertEquals(own.map((n) => n.slice(n.lastIndexOf("."))), [".lock", ".sock"]);
  return own;
}

/** Dates everything in `dir` a minute back, as a leftover's would be. */
function ageAll(dir: string) {
  const old = new Date(Date.now() - 60_000);
  for (const name of filesIn(dir)) Deno.utimeSync(`${dir}/${name}`, old, old);
}

async function stopAll(started: Deno.ChildProcess[]) {
  for (const p of started) {
    try {
      p.kill("SIGCONT");
      p.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await p.status;
    await p.stdout.cancel().catch(() => {});
    await p.stderr.cancel().catch(() => {});
  }
}

Deno.test({
  name:
    "serveService: a live process that does not answer on its socket keeps it (review-front S1)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const dir = `${parent}/front`;
    const started: Deno.ChildProcess[] = [];
    const fillers: Deno.Conn[] = [];
    try {
      const p = child(dir);
      started.push(p);
      const port = await portOf(p);
      assert(typeof port === "number", String(port));
      const files = filesOf(dir, p.pid);
      // Paused, its socket's backlog full: a connect fails, as it does for a
      // busy process or one on another host sharing the directory.
      p.kill("SIGSTOP");
      const socket = `${dir}/${files.find((n) => n.endsWith(".sock"))}`;
      for (let i = 0; i < 10_000; i++) {
        try {
          fillers.push(await Deno.connect({ transport: "unix", path: socket }));
        } catch {
          break;
        }
      }
      assert(fillers.length < 10_000, "the backlog never filled");
      ageAll(dir);
      const other = child(dir);
      started.push(other);
      const otherPort = await portOf(other);
      assert(typeof otherPort === "number", String(otherPort));
      assertEquals(filesIn(dir), [...files, ...filesOf(dir, other.pid)].sort());
      for (const c of fillers.splice(0)) c.close();
      p.kill("SIGCONT");
      assertEquals(await get(port), "ok");
    } finally {
      for (const c of fillers) c.close();
      await stopAll(started);
      await Deno.remove(parent, { recursive: true });
    }
  },
});

Deno.test({
  name: "serveService: its socket deleted, the server listens at its path again (review-front S1)",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const dir = `${parent}/front`;
    const started: Deno.ChildProcess[] = [];
    try {
      const p = child(dir);
      started.push(p);
      const port = await portOf(p);
      assert(typeof port === "number", String(port));
      const [lock, socket] = filesOf(dir, p.pid);
      assertEquals(await get(port), "ok");
      await Deno.remove(`${dir}/${socket}`);
      // The first new connection finds the socket gone; the server listens
      // again, and that connection is served there (review-ff N5: it was
      // dropped, its client closed after the handshake, and only the next
      // one served).
      const fresh = async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(enc("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
        const answer = await readToEnd(conn);
        conn.close();
        return answer.split("\r\n")[0];
      };
      assertEquals(await fresh(), "HTTP/1.1 200 OK");
      assertEquals(await fresh(), "HTTP/1.1 200 OK");
      // The next generation's name (review-ff SF2), beside the same lock file.
      assertEquals(filesIn(dir), [socket.replace(/\.sock$/, ".1.sock"), lock]);
    } finally {
      await stopAll(started);
      await Deno.remove(parent, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "serveService: its whole socket directory deleted, it is made again 0700 with the lock file; one log line a burst (review-ff SF3)",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const dir = `${parent}/front`;
    const lines: string[] = [];
    const server = await serveOk(
      dir,
      createLogger({ format: "json", write: (l) => lines.push(l) }),
    );
    try {
      const port = server.addr.port;
      const names = filesIn(dir);
      assertEquals(await get(port), "ok");
      await Deno.remove(dir, { recursive: true });
      const fresh = async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(enc("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
        const answer = await readToEnd(conn);
        conn.close();
        return answer.split("\r\n")[0];
      };
      // Before: no heal (the bind failed in the missing directory), every
      // connection dropped, and one WARN line each.
      const answers: string[] = [];
      for (let i = 0; i < 20; i++) answers.push(await fresh());
      // The first too: it is tried again once the directory and socket are
      // made again (review-ff N5).
      assertEquals(answers, Array(20).fill("HTTP/1.1 200 OK"));
      assertEquals(Deno.statSync(dir).mode! & 0o777, 0o700);
      assertEquals(filesIn(dir), [names[1].replace(/\.sock$/, ".1.sock"), names[0]]);
      const warned = lines.filter((l) => JSON.parse(l).level === "warn");
      assert(warned.length <= 3, warned.join("\n"));
    } finally {
      await server.shutdown();
      await Deno.remove(parent, { recursive: true });
    }
  },
});

Deno.test("serveService: two servers of one process (one PID) share a socket directory (review-front S2)", async () => {
  const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
  const dir = `${parent}/front`;
  const serve = () =>
    serveService({ fetch: () => new Response("ok") }, {
      hostname: "127.0.0.1",
      port: 0,
      proxyFrom: ["127.0.0.2"],
      socketDir: dir,
      log: silentLogger,
    });
  // Containers on one volume are each PID 1: the same PID, two processes.
  const first = await serve();
  try {
    const second = await serve();
    try {
      assertEquals(await get(first.addr.port), "ok");
      assertEquals(await get(second.addr.port), "ok");
      assertEquals(filesIn(dir).length, 4);
    } finally {
      await second.shutdown();
    }
    assertEquals(await get(first.addr.port), "ok");
  } finally {
    await first.shutdown();
  }
  assertEquals([...Deno.readDirSync(parent)], []);
  await Deno.remove(parent);
});

Deno.test("serveService: a request the front cannot follow passes nothing behind it to the server (review-front S3)", async () => {
  const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
  const seen: string[] = [];
  // Echoes the token, standing in for a leak of it.
  const server = await serveService({
    fetch: (r: Request, env: { remoteAddr?: string }) => {
      const path = new URL(r.url).pathname;
      seen.push(`${path} ${env.remoteAddr}`);
      return Response.json({ tag: r.headers.get(FRONT_CLIENT_HEADER) });
    },
  }, {
    hostname: "127.0.0.1",
    port: 0,
    // Front mode without TLS, so the bytes are the test's own.
    proxyFrom: ["192.0.2.77"],
    socketDir: `${parent}/front`,
    log: silentLogger,
  });
  const port = server.addr.port;
  try {
    // The victim's connection, kept open (its token lives while it does).
    const victim = await Deno.connect({ hostname: "127.0.0.1", port });
    const victimAddr = `127.0.0.1:${(victim.localAddr as Deno.NetAddr).port}`;
    await victim.write(enc("GET /victim HTTP/1.1\r\nhost: x\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const n = await victim.read(buf);
    const { tag } = JSON.parse(new TextDecoder().decode(buf.subarray(0, n!)).split("\r\n\r\n")[1]);
    // Two Content-Lengths ("0" and "00"): the front's framing cannot follow
    // it, Deno.serve takes it; the request behind it in the same write
    // carries the victim's token, with no front line of its own.
    const attacker = await Deno.connect({ hostname: "127.0.0.1", port });
    await attacker.write(enc(
      "POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\ncontent-length: 00\r\n\r\n" +
        `GET /smuggled HTTP/1.1\r\nhost: x\r\n${FRONT_CLIENT_HEADER}: ${tag}\r\n` +
        "connection: close\r\n\r\n",
    ));
    const answer = await readToEnd(attacker);
    attacker.close();
    // Before: 200 twice, /smuggled handled under the victim's address.
    assertEquals(answer.split("\r\n")[0], "HTTP/1.1 400 Bad Request");
    assertEquals(answer.match(/HTTP\/1\.1 /g)?.length, 1, answer);
    // The victim's connection still serves, under its own address.
    await victim.write(enc("GET /again HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
    assert((await readToEnd(victim)).startsWith("HTTP/1.1 200"));
    victim.close();
    assertEquals(seen, [`/victim ${victimAddr}`, `/again ${victimAddr}`]);
  } finally {
    await server.shutdown();
    await Deno.remove(parent, { recursive: true });
  }
});

/** A Unix socket left at `path` by a process killed while it listened: nothing listens on it. */
async function deadSocket(path: string): Promise<void> {
  const p = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      // A timer keeps it alive: a listener alone does not, and an exit would unlink the socket.
      `const l = Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });` +
      ' console.log("up"); setInterval(() => l, 1000);',
    ],
    stdout: "piped",
  }).spawn();
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (!(await reader.read()).value?.includes("up"));
  p.kill("SIGKILL");
  await p.status;
  await reader.cancel();
  assert(Deno.lstatSync(path).isSocket, `${path} left behind`);
}

Deno.test({
  name:
    "serveService: sockets without a lock file (before lock files) are swept only if nothing listens on them",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const dir = `${parent}/front`;
    await Deno.mkdir(dir, { mode: 0o700 });
    // What a version before lock files left: PID.sock, one of a killed process and one live.
    await deadSocket(`${dir}/4242.sock`);
    const live = Deno.listen({ transport: "unix", path: `${dir}/4343.sock` });
    const started: Deno.ChildProcess[] = [];
    const fillers: Deno.Conn[] = [];
    try {
      // The live one with its backlog full, as a busy or paused process's: a connect is not
      // refused then (EAGAIN), so it is no proof.
      for (let i = 0; i < 10_000; i++) {
        try {
          fillers.push(await Deno.connect({ transport: "unix", path: `${dir}/4343.sock` }));
        } catch {
          break;
        }
      }
      assert(fillers.length < 10_000, "the backlog never filled");
      ageAll(dir);
      const p = child(dir);
      started.push(p);
      const port = await portOf(p);
      assert(typeof port === "number", String(port));
      // Before: the dead one stayed for good.
      assertEquals(filesIn(dir), ["4343.sock", ...filesOf(dir, p.pid)].sort());
      assertEquals(await get(port), "ok");
    } finally {
      for (const c of fillers) c.close();
      live.close();
      await stopAll(started);
      await Deno.remove(parent, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "serveService: a symbolic link in place of the socket directory is refused (review-front N2)",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    // Planted by the same user: the link would take the socket and the sweep elsewhere.
    await Deno.mkdir(`${parent}/elsewhere`);
    await Deno.symlink(`${parent}/elsewhere`, `${parent}/front`);
    const p = child(`${parent}/front`);
    try {
      const exit = await portOf(p);
      assert(typeof exit === "string", "started through the link");
      assert(
        exit.includes(
          `${parent}/front is a symbolic link: the directory of the server behind the TLS front ` +
            `(front in --data-dir ${parent}) must be a directory of its own; remove the link, ` +
            "and the next start makes the directory (0700)",
        ),
        exit,
      );
      assertEquals(filesIn(`${parent}/elsewhere`), []);
    } finally {
      await stopAll([p]);
      await Deno.remove(parent, { recursive: true });
    }
  },
});

Deno.test({
  name: "serveService: shutdown empties no directory but its own: a link at its name is left alone",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const dir = `${parent}/front`;
    const server = await serveOk(dir);
    try {
      const lock = filesIn(dir).find((f) => f.endsWith(".lock"))!;
      // A temp cleaner removed the directory, and someone put a link at its name to a directory
      // holding a file of the lock file's name.
      await Deno.rename(dir, `${parent}/gone`);
      await Deno.mkdir(`${parent}/elsewhere`);
      await Deno.writeTextFile(`${parent}/elsewhere/${lock}`, "theirs");
      await Deno.symlink(`${parent}/elsewhere`, dir);
      await server.shutdown();
      // Before: removed through the link.
      assertEquals(await Deno.readTextFile(`${parent}/elsewhere/${lock}`), "theirs");
    } finally {
      await server.shutdown();
      await Deno.remove(parent, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "serveService: a heal does not follow a symbolic link put in place of its directory: it listens again once the link is gone",
  ignore: Deno.build.os === "windows",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-socket-" });
    const dir = `${parent}/front`;
    const lines: string[] = [];
    const server = await serveOk(
      dir,
      createLogger({ format: "json", write: (l) => lines.push(l) }),
    );
    try {
      const port = server.addr.port;
      const names = filesIn(dir);
      assertEquals(await get(port), "ok");
      await Deno.remove(dir, { recursive: true });
      await Deno.mkdir(`${parent}/elsewhere`);
      await Deno.symlink(`${parent}/elsewhere`, dir);
      const fresh = async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(enc("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
        const answer = await readToEnd(conn);
        conn.close();
        return answer.split("\r\n")[0];
      };
      // Dropped while the link is there: no directory of this process's is at the name.
      for (let i = 0; i < 3; i++) assertEquals(await fresh(), "");
      // Before session 11: the heal made its lock file and socket in the link's target, and
      // served; until session 12 it moved to a fresh directory in /tmp.
      assertEquals(filesIn(`${parent}/elsewhere`), []);
      const unreachable = lines.map((l) => JSON.parse(l)).filter((l) =>
        l.msg.includes("cannot listen again")
      );
      assertEquals(unreachable.length, 1, lines.join("\n"));
      assert(unreachable[0].detail.includes("symbolic link"), lines.join("\n"));
      await Deno.remove(dir);
      // The link gone, the next connection makes the directory again and is served.
      assertEquals(await fresh(), "HTTP/1.1 200 OK");
      assertEquals(filesIn(dir), [names[1].replace(/\.sock$/, ".1.sock"), names[0]]);
      assertEquals(Deno.lstatSync(dir).mode! & 0o777, 0o700);
    } finally {
      await server.shutdown();
      await Deno.remove(parent, { recursive: true });
    }
  },
});
