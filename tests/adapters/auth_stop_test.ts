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
import { filesIn } from "./_front.ts";
import { authStartCommand } from "../../runtime-adapters/deno/auth_process.ts";

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
