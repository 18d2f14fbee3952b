/**
 * Runs the auth service as a child process and waits until it listens: for
 * the demo, the benchmarks and tests that need a real process. Reads the
 * service's own startup lines (URL and CA pin) rather than guessing a port.
 *
 * @module
 */

/** The auth service's entry point (`deno run … AUTH_ENTRY start …`). */
export const AUTH_ENTRY = new URL("./entry/auth.ts", import.meta.url).pathname;

/**
 * The V8 flags the auth service ships with (`deno task auth`, the compiled
 * binary): an explicit heap budget, since V8 otherwise lets a request flood's
 * garbage grow the heap toward a limit sized by the machine
 * (docs/security.md). Processes started here get them too, so benchmarks and
 * tests measure the service as shipped; further `--v8-flags` add to them.
 */
export const AUTH_V8_FLAGS = "--v8-flags=--max-old-space-size=256,--max-semi-space-size=2";

/** Options of {@linkcode spawnAuthService}. */
export interface SpawnAuthOptions {
  /** `--data-dir`. */
  dataDir: string;
  /** Extra `start` flags (`--cluster-name`, `--insecure-no-tls`, …). */
  args?: string[];
  /** `--listen` address (default `127.0.0.1:0`; a restart passes the port it had). */
  listen?: string;
  /** Deno flags before the script, after {@linkcode AUTH_V8_FLAGS} (e.g. `--v8-flags=--prof`). */
  denoFlags?: string[];
  /**
   * The command line to run instead of `deno run … entry/auth.ts` (for
   * example a `bin/keybound-auth` wrapper); `start --data-dir …` is appended.
   */
  command?: string[];
  /** Working directory of the child. */
  cwd?: string;
  /** Environment of the child (added to the inherited one). */
  env?: Record<string, string>;
  /** Keep the service's log (stderr) for {@linkcode AuthServiceProcess.log}; dropped otherwise. */
  captureLog?: boolean;
}

/** A running auth service. */
export interface AuthServiceProcess {
  /** Base URL, without a trailing slash. */
  url: string;
  /** `host:port`. */
  addr: string;
  /** Base URL of the diagnostics listener, when started with `--diag-addr`. */
  diagUrl?: string;
  /** `sha256:<hex>` pin of the host CA, as printed. */
  caPin: string;
  /** Process id. */
  pid: number;
  /** SIGTERM, then waits; returns the exit code. */
  stop(): Promise<number>;
  /** Resolves with the exit code once the process has ended by itself or by {@linkcode stop}. */
  exited: Promise<number>;
  /** The log so far (empty unless `captureLog` was set). */
  log(): string;
}

/**
 * The command line of `auth start` as {@linkcode spawnAuthService} runs it
 * (program first): for tests that run it themselves, to read its exit and
 * its first lines, or under a wrapper such as `prlimit`.
 */
export function authStartCommand(
  o: Pick<SpawnAuthOptions, "dataDir" | "args" | "listen" | "denoFlags" | "command">,
): string[] {
  return [
    ...(o.command ??
      [
        Deno.execPath(),
        "run",
        "--unstable-kv",
        "-A",
        AUTH_V8_FLAGS,
        ...(o.denoFlags ?? []),
        AUTH_ENTRY,
      ]),
    "start",
    "--data-dir",
    o.dataDir,
    "--listen",
    o.listen ?? "127.0.0.1:0",
    ...(o.args ?? []),
  ];
}

/** Starts `auth start` (on 127.0.0.1, port 0 unless `listen` says) and resolves once it listens. */
export async function spawnAuthService(o: SpawnAuthOptions): Promise<AuthServiceProcess> {
  const [program, ...args] = authStartCommand(o);
  const child = new Deno.Command(program, {
    args,
    ...(o.cwd ? { cwd: o.cwd } : {}),
    ...(o.env ? { env: o.env } : {}),
    stdout: "piped",
    stderr: o.captureLog ? "piped" : "null",
  }).spawn();
  let log = "";
  const logged = o.captureLog
    ? (async () => {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) log += text;
    })()
    : Promise.resolve();
  const exited = Promise.all([child.status, logged]).then(([s]) => s.code);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!/CA pin sha256:[0-9a-f]{64}/.test(banner)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the auth service exited before listening: ${banner}`);
    banner += value;
  }
  // Keep draining so the child never blocks on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  const url = /service listening on (\S+)/.exec(banner)![1].replace(/\/$/, "");
  const diagUrl = /diagnostics listening on (\S+)/.exec(banner)?.[1].replace(/\/$/, "");
  return {
    url,
    addr: new URL(url).host,
    ...(diagUrl ? { diagUrl } : {}),
    caPin: /sha256:[0-9a-f]{64}/.exec(banner)![0],
    pid: child.pid,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const code = await exited;
      await drained;
      return code;
    },
    exited,
    log: () => log,
  };
}
