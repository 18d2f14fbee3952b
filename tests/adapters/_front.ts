/**
 * Shared set-up of the public front's tests: a server certificate for
 * 127.0.0.1, and a front in this process before a Deno.serve answering "ok".
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import { issueServerCert } from "../_openssl_pki.ts";
import {
  type FetchApp,
  serveApp,
  serveService,
  type ServeServiceOptions,
} from "../../runtime-adapters/deno/serve.ts";
import { type FrontOptions, startFront } from "../../runtime-adapters/deno/tls_front.ts";
import type { FrontEvent } from "../../src/server/metrics.ts";
import { type Logger, silentLogger } from "../../src/util/log.ts";
import { waitUntil } from "../_wait.ts";
import { assert } from "../_assert.ts";
import { authStartCommand } from "../../runtime-adapters/deno/auth_process.ts";
import { cannotActAsOthers } from "../_tools.ts";

/** A server certificate for 127.0.0.1, its key and its CA (openssl). */
export async function serverPair(): Promise<{ cert: string; key: string; ca: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kb-front-" });
  try {
    await issueServerCert(dir, "IP:127.0.0.1");
    return {
      cert: await Deno.readTextFile(`${dir}/server.crt`),
      key: await Deno.readTextFile(`${dir}/server.key`),
      ca: await Deno.readTextFile(`${dir}/ca.crt`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A front on 127.0.0.1 before a Deno.serve answering with `fetch` ("ok"), with the events it reported. */
export async function frontWith(
  extra: Partial<FrontOptions> = {},
  fetch: (r: Request) => Response | Promise<Response> = () => new Response("ok"),
) {
  const inner = serveApp({ fetch }, { hostname: "127.0.0.1", port: 0 });
  const events: FrontEvent[] = [];
  const front = await startFront({
    hostname: "127.0.0.1",
    port: 0,
    balancers: new Set(),
    target: { hostname: "127.0.0.1", port: inner.addr.port },
    log: silentLogger,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return {
    front,
    events,
    /** Stops both. */
    async stop() {
      front.stopAccepting();
      await inner.shutdown();
      await front.drain();
    },
  };
}

/** Why a child's descriptors cannot be limited here (Linux's prlimit, util-linux), or undefined. */
export function noPrlimit(): string | undefined {
  if (Deno.build.os !== "linux") return "prlimit is Linux's";
  try {
    new Deno.Command("prlimit", { args: ["--version"], stdout: "null" }).outputSync();
    return undefined;
  } catch {
    return "prlimit (util-linux) is not installed";
  }
}

/**
 * `source` run by `deno eval` in a child under `prlimit --nofile=N`: its
 * output lines as they come, the first JSON line starting with `{"key"`
 * once printed, and a stop that kills it.
 */
/**
 * Source of a child running serve.ts's serveService (the front before
 * Deno.serve on a Unix socket in `dir`, answering "ok"), trusting PROXY
 * headers from `proxyFrom`, with `front` as extra front options (source
 * text). Prints `{"port": N}` once listening, JSON log lines after.
 */
export const servedChildSource = (dir: string, proxyFrom: string, front = "") => `
import { serveService } from ${
  JSON.stringify(new URL("../../runtime-adapters/deno/serve.ts", import.meta.url).href)
};
import { createLogger } from ${
  JSON.stringify(new URL("../../src/util/log.ts", import.meta.url).href)
};
const log = createLogger({ format: "json", write: (line) => console.log(line) });
const server = await serveService({ fetch: () => new Response("ok") }, {
  hostname: "127.0.0.1",
  port: 0,
  proxyFrom: [${JSON.stringify(proxyFrom)}],
  socketDir: ${JSON.stringify(dir)},
  log,${front === "" ? "" : `\n  front: ${front},`}
});
console.log(JSON.stringify({ port: server.addr.port }));
await server.finished;
`;

export function prlimitChild(nofile: number, source: string) {
  const process = new Deno.Command("prlimit", {
    args: [`--nofile=${nofile}`, Deno.execPath(), "eval", "--ext=ts", source],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const reading = (async () => {
    let buffered = "";
    for await (const chunk of process.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (buffered + chunk).split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
    }
  })();
  return {
    lines,
    async json<T>(key: string): Promise<T> {
      const prefix = `{${JSON.stringify(key)}`;
      await waitUntil(() => lines.some((l) => l.startsWith(prefix)), `the child's ${key}`, {
        timeoutMs: 30_000,
      });
      return JSON.parse(lines.find((l) => l.startsWith(prefix))!);
    },
    /** Waits (at most 20 s) for the child to exit on its own. */
    async exited(): Promise<Deno.CommandStatus> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        process.status,
        new Promise<null>((r) => timer = setTimeout(() => r(null), 20_000)),
      ]);
      clearTimeout(timer);
      if (status === null) throw new Error("the child did not exit within 20 s");
      return status;
    },
    async stop() {
      try {
        process.kill("SIGKILL");
      } catch {
        // It has exited (crashed) already.
      }
      await process.status;
      await reading;
    },
  };
}

/** A TLS connection from `from` that finishes its handshake, or "closed" if it ends before. */
export async function tlsFrom(from: string, port: number): Promise<tls.TLSSocket | "closed"> {
  const c = await tlsWithSocket(from, port);
  return c === "closed" ? c : c.tls;
}

/** {@linkcode tlsFrom}, with the TCP socket under it (to reset it). */
export function tlsWithSocket(
  from: string,
  port: number,
): Promise<{ tls: tls.TLSSocket; socket: net.Socket } | "closed"> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: from });
    socket.on("error", () => {});
    const s = tls.connect({ socket, rejectUnauthorized: false }, () => resolve({ tls: s, socket }));
    s.on("error", () => {});
    s.on("close", () => resolve("closed"));
  });
}

/** A TLS GET from `from`: the status line, or "" if the connection ended without one. */
export async function get(from: string, port: number): Promise<string> {
  const s = await tlsFrom(from, port);
  if (s === "closed") return "";
  let text = "";
  s.on("data", (d: Uint8Array) => text += new TextDecoder().decode(d));
  s.write("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
  await new Promise((r) => s.on("close", r));
  return text.split("\r\n")[0];
}

/** Everything `conn` reads until its end (a failed read ends it too). */
export async function readToEnd(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return text;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

/** A TLS front in this process before a Deno.serve answering "ok"; `stop` ends both. */
export async function tlsFrontWith(extra: Partial<FrontOptions> = {}) {
  const { cert, key } = await serverPair();
  return await frontWith({ tls: { cert, key }, ...extra });
}

/**
 * serveService over TLS in this process before `fetch`, its socket in a
 * temporary directory (the real composition: a tagged front before
 * Deno.serve on a Unix socket); `stop` ends it and removes the directory.
 */
export async function tlsService(fetch: FetchApp["fetch"], front?: ServeServiceOptions["front"]) {
  const { cert, key } = await serverPair();
  const dir = await Deno.makeTempDir({ prefix: "kb-front-" });
  const server = await serveService({ fetch }, {
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert, key },
    socketDir: `${dir}/front`,
    log: silentLogger,
    ...(front ? { front } : {}),
  });
  return {
    server,
    async stop() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * A TLS connection from `from` that sends a GET, waits until the server has
 * it (`entered` grows past what it was), then resets; false if the front
 * closed it before its handshake (refused).
 */
export async function sendThenReset(port: number, from: string, entered: () => number) {
  const c = await tlsWithSocket(from, port);
  if (c === "closed") return false;
  const before = entered();
  c.tls.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  await waitUntil(() => entered() > before, "the request in the handler");
  c.socket.resetAndDestroy();
  return true;
}

/**
 * {@linkcode tlsService} whose handler waits, as on a slow or unreachable
 * storage backend (PostgreSQL), until `release`; `entered` counts requests
 * that reached it, `finished` those whose handler returned.
 */
export async function waitingService(front?: ServeServiceOptions["front"]) {
  let release = () => {};
  const released = new Promise<void>((r) => release = r);
  let entered = 0;
  let finished = 0;
  const service = await tlsService(async () => {
    entered++;
    await released;
    finished++;
    return new Response("ok");
  }, front);
  return {
    ...service,
    entered: () => entered,
    finished: () => finished,
    release: () => release(),
    async stop() {
      release();
      await service.stop();
    },
  };
}

/** serveService answering "ok" behind a front that trusts PROXY from 127.0.0.2, its socket in `dir`. */
export function serveOk(dir: string, log: Logger = silentLogger) {
  return serveService({ fetch: () => new Response("ok") }, {
    hostname: "127.0.0.1",
    port: 0,
    proxyFrom: ["127.0.0.2"],
    socketDir: dir,
    log,
  });
}

/** The `front` directory {@linkcode anySocketDir} gives: one per process. */
let sharedSocketDir: string | undefined;

/**
 * A socket directory for serveService in tests that do not look at it: a
 * `front` in a private directory of this process's own, removed when the
 * process exits (servers of one process share it, as auth processes share
 * their data directory's).
 */
export function anySocketDir(): string {
  if (sharedSocketDir !== undefined) return sharedSocketDir;
  const parent = Deno.makeTempDirSync({ prefix: "kb-front-any-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(parent, { recursive: true }));
  return sharedSocketDir = `${parent}/front`;
}

/** The names in `dir`, sorted. */
export function filesIn(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/**
 * Runs `command` (an `auth start`) to its exit: its code and stderr. One
 * that starts serving instead (prints its URL) is stopped and fails the test.
 */
export async function exitOf(command: Deno.Command): Promise<{ code: number; stderr: string }> {
  const p = command.spawn();
  const stderr = new Response(p.stderr).text();
  let out = "";
  for await (const chunk of p.stdout.pipeThrough(new TextDecoderStream())) {
    out += chunk;
    if (out.includes("listening on")) p.kill("SIGKILL");
  }
  const { code } = await p.status;
  assert(!out.includes("listening on"), `it started: ${out}`);
  return { code, stderr: await stderr };
}

/**
 * Whether a test that injects faults with strace (`what`) must be ignored
 * here: strace missing, or ptrace denied; says why once per test. A plain
 * `ignore`, in CI too: .ci/run does not install strace (asked in session 13).
 */
export function withoutStrace(what: string): boolean {
  let problem: string | undefined;
  try {
    const out = new Deno.Command("strace", {
      args: ["-qq", "-o", "/dev/null", "-e", "trace=flock", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    if (!out.success) problem = "strace cannot trace here (ptrace denied?)";
  } catch {
    problem = "needs strace (Debian package strace)";
  }
  if (problem !== undefined) console.warn(`ignored: ${what}: ${problem}`);
  return problem !== undefined;
}

/** The uid the attack tests act as. */
export const NOBODY = 65534;

/** Why the attack tests cannot run here: they need root, setpriv and python3 (the attacker's). */
export function cannotAttack(): string | undefined {
  const problem = cannotActAsOthers();
  if (problem !== undefined) return problem;
  try {
    Deno.statSync("/usr/bin/python3");
  } catch {
    return "needs /usr/bin/python3";
  }
  return undefined;
}

/** `args` (a program and its arguments) run as `nobody`, with no supplementary groups. */
export function asNobody(args: string[], options: Omit<Deno.CommandOptions, "args"> = {}) {
  return new Deno.Command("/usr/bin/setpriv", {
    ...options,
    args: [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...args],
  });
}

/**
 * A command of auth's (`sub`: `admin-identity …`, `start …`) run as
 * `auth start` for `data` is, with its deno flags: stdout and stderr piped.
 */
export function authCommand(data: string, sub: string[]): Deno.Command {
  const [program, ...start] = authStartCommand({ dataDir: data });
  return new Deno.Command(program, {
    args: [...start.slice(0, start.indexOf("start")), ...sub],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** `auth start` for `data` with `env` (and `extra` flags) added: its exit code and stderr. */
export function refusedStart(data: string, env: Record<string, string>, extra: string[] = []) {
  const [program, ...args] = authStartCommand({ dataDir: data, args: extra });
  return exitOf(
    new Deno.Command(program, {
      args,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
}

/**
 * `auth start` for `data` with the auth task's permissions but `write`
 * (`--allow-write…`) and `sys` (`--allow-sys…`) as given, `env` and `extra`
 * flags added: its exit code and stderr.
 */
export function narrowedStart(
  data: string,
  { write, sys }: { write: string; sys: string },
  env: Record<string, string> = {},
  extra: string[] = [],
) {
  return exitOf(
    new Deno.Command(Deno.execPath(), {
      args: authStartCommand({
        dataDir: data,
        args: extra,
        command: [
          Deno.execPath(),
          "run",
          "--unstable-kv",
          "--allow-net",
          "--allow-read",
          write,
          "--allow-env",
          sys,
          new URL("../../runtime-adapters/deno/entry/auth.ts", import.meta.url).pathname,
        ],
      }).slice(1),
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
}
