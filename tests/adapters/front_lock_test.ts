/**
 * What serveService does when taking its socket's place fails at a moment
 * no ordinary run reaches, made to happen for real: the first listen fails
 * (a directory planted at the socket's name), and a heal's lock is refused
 * (EAGAIN injected into its `flock` by strace, as another process holding
 * the lock would give). Both had no test (session 11: 5c26f31 and
 * review-so N3; CLOSING-11).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { filesIn, readToEnd, serveOk, withoutStrace } from "./_front.ts";

Deno.test({
  name:
    "serveService: a first listen that fails removes the lock file privateSocket made (5c26f31), and the next start finds nothing of it",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-first-listen-" });
    const dir = join(parent, "front");
    try {
      await Deno.mkdir(dir, { mode: 0o700 });
      // The socket's name, PID-RANDOM.sock, made known: RANDOM's bytes are all 0 for this call
      // (privateSocket draws them before its first await, so nothing else runs meanwhile).
      const planted = join(dir, `${Deno.pid}-${"0".repeat(16)}.sock`);
      // A directory that is not empty: the listen's removal of a stale socket fails, so bind does.
      await Deno.mkdir(join(planted, "x"), { recursive: true });
      const draw = crypto.getRandomValues;
      let started: Promise<unknown>;
      crypto.getRandomValues = <T extends ArrayBufferView | null>(array: T): T => {
        crypto.getRandomValues = draw;
        (array as Uint8Array).fill(0);
        return array;
      };
      try {
        started = serveOk(dir);
      } finally {
        crypto.getRandomValues = draw;
      }
      await assertRejects(() => started);
      // No PID-RANDOM.lock left, held or not: only what was planted.
      assertEquals(filesIn(dir), [`${Deno.pid}-${"0".repeat(16)}.sock`]);
      await Deno.remove(planted, { recursive: true });
      // Nothing of the failed start is left to hold the directory: a start and stop leave none.
      const again = await serveOk(dir);
      await again.shutdown();
      assertEquals(filesIn(parent), []);
    } finally {
      await Deno.remove(parent, { recursive: true });
    }
  },
});

/**
 * A serveService child in `dir`, logging as auth does, whose second
 * `flock` on its main thread (the first heal's lock: the first is its
 * start's) fails with EAGAIN, strace injecting it.
 */
function lockRefusedChild(dir: string) {
  const source = `
import { serveService } from ${
    JSON.stringify(new URL("../../runtime-adapters/deno/serve.ts", import.meta.url).href)
  };
import { createLogger } from ${
    JSON.stringify(new URL("../../src/util/log.ts", import.meta.url).href)
  };
const server = await serveService({ fetch: () => new Response("ok") }, {
  hostname: "127.0.0.1", port: 0, proxyFrom: ["127.0.0.2"], socketDir: ${JSON.stringify(dir)},
  log: createLogger({ component: "auth" }),
});
Deno.addSignalListener("SIGTERM", () => server.shutdown());
console.log(JSON.stringify({ port: server.addr.port, pid: Deno.pid }));
await server.finished;
Deno.exit(0);
`;
  return new Deno.Command("strace", {
    args: [
      "-f",
      "-qq",
      "-o",
      "/dev/null",
      "-e",
      "trace=flock",
      "-e",
      "inject=flock:error=EAGAIN:when=2",
      Deno.execPath(),
      "eval",
      "--ext=ts",
      source,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * The answer's body to a GET / on a new connection to the front at `port`
 * (a fresh one each time: only a new connection makes the front connect,
 * and heal), or "dropped" if the connection closed with no answer.
 */
async function tryGet(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    const answer = await readToEnd(conn);
    return answer === "" ? "dropped" : answer.slice(answer.indexOf("\r\n\r\n") + 4);
  } finally {
    conn.close();
  }
}

/** Whether a process holds `path` locked (flock): this one cannot take the lock. */
async function heldByOther(path: string): Promise<boolean> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    return !(await file.tryLock(true));
  } finally {
    file.close();
  }
}

Deno.test({
  name:
    "serveService: a heal whose lock another process holds removes the lock file it made, logs it, and does not listen; the retry takes the lock (review-so N3)",
  ignore: Deno.build.os !== "linux" || withoutStrace("flock refused by strace"),
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-heal-lock-" });
    const dir = join(parent, "front");
    const p = lockRefusedChild(dir);
    const stderr = new Response(p.stderr).text();
    const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let pid: number | undefined;
    try {
      let line = "";
      while (!line.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the child exited: ${await stderr}`);
        line += value;
      }
      const started = JSON.parse(line);
      pid = started.pid;
      assertEquals(await tryGet(started.port), "ok");
      const [lock, socket] = filesIn(dir);
      assert(lock.endsWith(".lock") && socket.endsWith(".sock"), filesIn(dir).join(" "));
      // Both gone (a cleaner): the next connection heals. Its first try's
      // lock is refused: that heal removes the file it made and does not
      // listen; the front's retry of the connection heals again, and takes it.
      await Deno.remove(join(dir, lock));
      await Deno.remove(join(dir, socket));
      assertEquals(await tryGet(started.port), "ok");
      const base = lock.slice(0, -".lock".length);
      assertEquals(filesIn(dir), [`${base}.1.sock`, `${base}.lock`]);
      // Held by the server: a lock file left unlocked would let another
      // start's sweep take it and remove the live socket.
      assertEquals(await heldByOther(join(dir, lock)), true);
    } finally {
      // strace -o FILE blocks SIGTERM for itself: the server is stopped, and strace ends with it.
      if (pid !== undefined) Deno.kill(pid, "SIGTERM");
      else p.kill("SIGKILL");
      await p.status;
      await reader.cancel().catch(() => {});
    }
    const log = await stderr;
    // Stopped, it removes its socket, the lock file its heal made, and the directory.
    assertEquals(filesIn(parent), []);
    await Deno.remove(parent, { recursive: true });
    // One line for the burst, with its stable reason, naming the lock file.
    const refused = log.split("\n").filter((l) => l.includes("reason=server_unreachable"));
    assertEquals(refused.length, 1, log);
    assert(refused[0].includes(`cannot lock ${dir}/`), log);
  },
});
