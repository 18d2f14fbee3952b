/**
 * SIGTERM at any moment of an `auth start` stops it cleanly: exit 0, its
 * Deno KV closed (no `keybound.kv-wal` or `-shm` left), the front's socket
 * directory and lock file removed. Until session 13 the signal listeners
 * went in only once the service listened, and a SIGTERM before that killed
 * the process (exit 143) with its storage open, leaving `-wal`/`-shm`
 * (seen twice in session 12's tests). Real `auth start` processes.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals } from "../_assert.ts";
import { authCommand, filesIn, withoutStrace } from "./_front.ts";
import { authStartCommand, spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";

/** What a stopped start left: its exit, and the names in the data directory and its `front`. */
interface Left {
  code: number;
  signal: Deno.Signal | null;
  data: string[] | "none";
  front: string[] | "none";
}

/**
 * Runs `auth start` for `data` (`args` added) and sends it SIGTERM when its
 * stderr first holds `at.line`, or `at.ms` after the spawn: what it left,
 * and its stderr.
 */
async function stoppedStart(
  data: string,
  args: string[],
  at: { line: string } | { ms: number },
): Promise<Left & { stderr: string }> {
  const [program, ...rest] = authStartCommand({ dataDir: data, args });
  const p = new Deno.Command(program, {
    args: rest,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const send = () => {
    try {
      p.kill("SIGTERM");
    } catch {
      // Exited already.
    }
  };
  const timer = "ms" in at ? setTimeout(send, at.ms) : undefined;
  let stderr = "";
  let sent = false;
  for await (const chunk of p.stderr.pipeThrough(new TextDecoderStream())) {
    stderr += chunk;
    if (!sent && "line" in at && stderr.includes(at.line)) {
      sent = true;
      send();
    }
  }
  const { code, signal } = await p.status;
  clearTimeout(timer);
  return { code, signal, data: namesIn(data), front: namesIn(join(data, "front")), stderr };
}

/** The SQLite companions among `names`: left only if the database was not closed. */
function companions(names: string[] | "none"): string[] {
  return names === "none" ? [] : names.filter((n) => n.endsWith("-wal") || n.endsWith("-shm"));
}

function namesIn(dir: string): string[] | "none" {
  try {
    return filesIn(dir);
  } catch {
    return "none";
  }
}

Deno.test({
  name:
    "auth start: SIGTERM at three steps after storage is open, before the service listens: exit 0, storage closed, nothing of the front left",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-stop-" });
    try {
      // Right after the open, while the new cluster is written (its first commits), and once
      // the admin identity is (the certificate, the console files and the servers come next).
      const lines = ["storage open", "created cluster", "wrote admin identity"];
      for (const [i, line] of lines.entries()) {
        for (const args of [["--insecure-no-tls"], []]) {
          const data = join(dir, `d${i}${args.length}`);
          const { stderr, ...left } = await stoppedStart(data, args, { line });
          assertEquals(
            {
              code: left.code,
              companions: companions(left.data),
              kv: left.data !== "none" && left.data.includes("keybound.kv"),
              front: left.front,
              stopped: /stopped/.test(stderr.trimEnd().split("\n").at(-1) ?? ""),
            },
            { code: 0, companions: [], kv: true, front: "none", stopped: true },
            stderr,
          );
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start: SIGTERM at varied moments of a start: a clean stop (exit 0, no -wal/-shm, no front), or killed before anything was made",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-stop-" });
    try {
      const unclean: string[] = [];
      // Moments spread over the whole start (a TLS start takes ~0.5-1.5 s here), both modes.
      for (let i = 0; i < 12; i++) {
        const data = join(dir, `d${i}`);
        const ms = (i % 6) * 250 + Math.random() * 250;
        const args = i % 2 === 0 ? ["--insecure-no-tls"] : [];
        const { stderr, ...left } = await stoppedStart(data, args, { ms });
        const clean = left.code === 0 && companions(left.data).length === 0 &&
          left.front === "none";
        // Before the runtime ran the entry point: the signal's default action, and nothing made.
        const early = left.signal === "SIGTERM" && left.data === "none";
        if (!clean && !early) unclean.push(`${JSON.stringify(left)} ${stderr}`);
      }
      assertEquals(unclean, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * python3's sqlite3 holding the write lock of the SQLite file `kv` (BEGIN
 * IMMEDIATE) until `release()` or 60 s: a Deno KV commit waits for it
 * without limit (docs/operations.md). `released`: whether it let go.
 */
async function lockHolder(kv: string) {
  const p = new Deno.Command("python3", {
    args: [
      "-c",
      `
import sqlite3, sys, select
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=1)
c.execute("BEGIN IMMEDIATE")
print("held", flush=True)
select.select([sys.stdin], [], [], 60)
c.execute("ROLLBACK")
print("released", flush=True)
`,
      kv,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const out = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  while (!said.includes("held")) said += (await out.read()).value ?? "";
  let released = false;
  const done = (async () => {
    for (;;) {
      const { value, done } = await out.read();
      if (value?.includes("released")) released = true;
      if (done) return;
    }
  })();
  return {
    get released() {
      return released;
    },
    async release() {
      await p.stdin.close().catch(() => {});
      await p.status;
      await done;
    },
  };
}

/**
 * Runs `command` and, once its stderr holds `line` (or 3 s after the spawn
 * when undefined: admin-identity logs nothing before it waits), sends it
 * `signal` twice, 0.5 s apart (two standard signals pending at once are
 * one): its exit and stderr.
 */
async function signalledTwice(
  command: Deno.Command,
  line: string | undefined,
  signal: Deno.Signal,
) {
  const p = command.spawn();
  await p.stdout.cancel();
  const err = p.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  const send = () => {
    try {
      p.kill(signal);
    } catch {
      // Gone.
    }
  };
  const twice = () => {
    send();
    setTimeout(send, 500);
  };
  if (line === undefined) {
    setTimeout(twice, 3000);
  } else {
    while (!stderr.includes(line)) {
      const { value, done } = await err.read();
      if (done) break;
      stderr += value;
    }
    twice();
  }
  for (;;) {
    const { value, done } = await err.read();
    if (done) break;
    stderr += value;
  }
  return { status: await p.status, stderr };
}

/** A data directory in `dir` holding a cluster (one start and stop). */
async function cluster(dir: string): Promise<string> {
  const data = join(dir, "d");
  const auth = await spawnAuthService({ dataDir: data, args: ["--insecure-no-tls"] });
  assertEquals(await auth.stop(), 0);
  return data;
}

// review-front (session 13) M1: a second signal was swallowed, so a start or break-glass
// waiting on storage could be ended only by SIGKILL. Each test asserts an order, not a time:
// the process ends while the lock is still held (at most 60 s, so a failure is not for ever).
for (
  const [what, sub, line, signal] of [
    [
      "auth start",
      ["start", "--listen", "127.0.0.1:0", "--insecure-no-tls"],
      "storage open",
      "SIGTERM",
    ],
    ["auth admin-identity", ["admin-identity"], undefined, "SIGINT"],
  ] as const
) {
  Deno.test({
    name:
      `${what} waiting on a Deno KV lock holder: a second ${signal} ends it at once (review-front s13 M1)`,
    ignore: Deno.build.os !== "linux",
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "kb-stop-twice-" });
      try {
        const data = await cluster(dir);
        const holder = await lockHolder(join(data, "keybound.kv"));
        try {
          const { status, stderr } = await signalledTwice(
            authCommand(data, [...sub, "--data-dir", data]),
            line,
            signal,
          );
          assertEquals(
            { endedWhileLockHeld: !holder.released, signal: status.signal },
            { endedWhileLockHeld: true, signal },
            stderr,
          );
        } finally {
          await holder.release();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/**
 * `auth start` for `data` (`args` added) under `strace -f -qq` with
 * `trace` (a delay injected at one syscall); once `moment()` gives the auth
 * process's pid (it is inside the delayed syscall), SIGTERM to it (strace
 * -o FILE keeps SIGTERM from itself); SIGKILL 60 s later if it still runs,
 * so that a hang fails rather than waits. Its exit code, stdout and stderr.
 */
async function stoppedWhileDelayed(
  data: string,
  args: string[],
  trace: string[],
  moment: () => number | undefined,
) {
  const [program, ...rest] = authStartCommand({ dataDir: data, args });
  const p = new Deno.Command("strace", {
    args: ["-f", "-qq", ...trace, program, ...rest],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(p.stdout).text();
  const stderr = new Response(p.stderr).text();
  let pid: number | undefined;
  while ((pid = moment()) === undefined) await new Promise((r) => setTimeout(r, 20));
  Deno.kill(pid, "SIGTERM");
  const bound = setTimeout(() => Deno.kill(pid!, "SIGKILL"), 60_000);
  const { code } = await p.status;
  clearTimeout(bound);
  return { code, stdout: await stdout, stderr: await stderr };
}

Deno.test({
  name:
    "auth start: SIGTERM while the servers start (its socket's lock delayed): they stop at once, exit 0, nothing left, no startup line (review-front s13 S1)",
  ignore: Deno.build.os !== "linux" || withoutStrace("a delayed flock"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-stop-serving-" });
    try {
      const data = join(dir, "d");
      const front = join(data, "front");
      // The socket's lock file is made, then its flock (the process's first) waits 3 s.
      const out = await stoppedWhileDelayed(
        data,
        [],
        ["-o", "/dev/null", "-e", "trace=flock", "-e", "inject=flock:delay_enter=3000000:when=1"],
        () => {
          const lock = namesIn(front) === "none" ? undefined : (namesIn(front) as string[])
            .find((n) => n.endsWith(".lock"));
          return lock === undefined ? undefined : Number(lock.split("-")[0]);
        },
      );
      assertEquals(
        {
          code: out.code,
          listening: out.stdout.includes("listening on"),
          companions: companions(namesIn(data)),
          front: namesIn(front),
          stopped: /stopped/.test(out.stderr.trimEnd().split("\n").at(-1) ?? ""),
        },
        { code: 0, listening: false, companions: [], front: "none", stopped: true },
        out.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start: SIGTERM while the data directory is checked: nothing is made, exit 0 (review-front s13 S2)",
  ignore: Deno.build.os !== "linux" || withoutStrace("a delayed lstat"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-stop-early-" });
    try {
      const data = join(dir, "d");
      const trace = join(dir, "trace");
      // The first syscall naming the data directory (the check's lstat: its parent is there)
      // waits 3 s.
      const out = await stoppedWhileDelayed(
        data,
        ["--insecure-no-tls"],
        ["-o", trace, "-P", data, "-e", "inject=all:delay_enter=3000000:when=1"],
        () => {
          const line = (() => {
            try {
              return Deno.readTextFileSync(trace);
            } catch {
              return "";
            }
          })();
          return line.includes(data) ? Number(line.split(" ")[0]) : undefined;
        },
      );
      assertEquals(
        { code: out.code, made: filesIn(dir) },
        { code: 0, made: ["trace"] },
        out.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start --storage postgres://: SIGTERM during an open that then fails: exit 0, the failure logged (review-front s13 S3)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-stop-pg-" });
    // A PostgreSQL that accepts and never answers: the open fails at its connect timeout.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepted = Promise.withResolvers<void>();
    const accepting = (async () => {
      for await (const conn of silent) {
        held.push(conn);
        accepted.resolve();
      }
    })();
    try {
      const password = join(dir, "pw");
      await Deno.writeTextFile(password, "pw\n", { mode: 0o600 });
      const data = join(dir, "d");
      const p = authCommand(data, [
        "start",
        "--data-dir",
        data,
        "--listen",
        "127.0.0.1:0",
        "--insecure-no-tls",
        "--storage",
        `postgres://kb@127.0.0.1:${silent.addr.port}/kb`,
        "--storage-password-file",
        password,
      ]).spawn();
      const stdout = new Response(p.stdout).text();
      const stderr = new Response(p.stderr).text();
      await accepted.promise;
      p.kill("SIGTERM");
      const { code } = await p.status;
      const log = await stderr;
      await stdout;
      const lines = log.trimEnd().split("\n");
      assertEquals(
        {
          code,
          failed: lines.some((l) => l.includes("the start failed while stopping")),
          last: /stopped/.test(lines.at(-1) ?? ""),
        },
        { code: 0, failed: true, last: true },
        log,
      );
    } finally {
      silent.close();
      await accepting.catch(() => {});
      for (const conn of held) conn.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
