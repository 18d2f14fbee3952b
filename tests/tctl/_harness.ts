/**
 * Test harness: the real auth service as a subprocess (or an in-process app
 * for state the tests seed directly) and tctl run as a real subprocess.
 *
 * @module
 */
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { type FetchApp, serveApp } from "../../runtime-adapters/deno/serve.ts";
import {
  type AppOptions,
  bootstrapCluster,
  createApp,
  issueAdminIdentityFile,
  type ServerContext,
} from "../../src/server/mod.ts";
import type { Backend } from "../../src/storage/backend.ts";
import { silentLogger } from "../../src/util/log.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** tctl's entry point. */
export const TCTL = `${ROOT}runtime-adapters/deno/entry/tctl.ts`;

/** A running auth service subprocess. */
export interface AuthProcess {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  address: string;
  /** Its data directory. */
  dataDir: string;
  /** The CA pin it printed at start. */
  caPin: string;
  /** Path of its admin identity. */
  identity: string;
  /** A scratch directory for test files (also tctl's working directory). */
  workDir: string;
  /** A directory with a `tctl` wrapper script, for `bash -c` pipelines. */
  binDir: string;
  /** Stops it and removes its directories. */
  stop(): Promise<void>;
}

async function makeTctlWrapper(dir: string): Promise<string> {
  const binDir = `${dir}/bin`;
  await Deno.mkdir(binDir);
  await Deno.writeTextFile(
    `${binDir}/tctl`,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A "${TCTL}" "$@"\n`,
    { mode: 0o755 },
  );
  return binDir;
}

/** Starts `auth start` on 127.0.0.1 port 0 and waits for its address. */
export async function startAuth(clusterName = "test.example"): Promise<AuthProcess> {
  const dir = await Deno.makeTempDir({ prefix: "keybound-tctl-" });
  const dataDir = `${dir}/data`;
  const workDir = `${dir}/work`;
  await Deno.mkdir(workDir);
  const auth = await spawnAuthService({ dataDir, args: ["--cluster-name", clusterName] });
  const { url, caPin } = auth;
  return {
    url,
    address: url.replace("https://", ""),
    dataDir,
    caPin,
    identity: `${dataDir}/admin-identity`,
    workDir,
    binDir: await makeTctlWrapper(dir),
    async stop() {
      await auth.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** An in-process auth app over plain HTTP on loopback, with direct access to its state. */
export interface InProcessAuth {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Path of an admin identity file. */
  identity: string;
  /** The server context (backend included). */
  ctx: ServerContext;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startInProcessAuth}. */
export interface InProcessAuthOptions {
  /** Wraps the Deno KV backend (say, to count the rows a command reads). */
  wrap?: (backend: Backend) => Backend;
  /** Options of the app. */
  app?: AppOptions;
  /** Wraps the served app (say, to change its answers as a newer server would). */
  around?: (app: FetchApp) => FetchApp;
}

/** Serves `createApp(ctx)` over HTTP on 127.0.0.1 port 0 with a Deno KV file in a temp dir. */
export async function startInProcessAuth(
  options: InProcessAuthOptions = {},
): Promise<InProcessAuth> {
  const dir = await Deno.makeTempDir({ prefix: "keybound-tctl-app-" });
  const kv = await DenoKvBackend.open(`${dir}/kv`);
  const backend = options.wrap ? options.wrap(kv) : kv;
  const ctx = await bootstrapCluster(backend, {
    clusterName: "inproc.example",
    log: silentLogger,
    version: "0.1.0",
  });
  const identity = `${dir}/admin-identity`;
  await Deno.writeTextFile(identity, await issueAdminIdentityFile(ctx), { mode: 0o600 });
  const app = createApp(ctx, options.app);
  const server = serveApp(options.around ? options.around(app) : app, {
    hostname: "127.0.0.1",
    port: 0,
  });
  return {
    url: server.url,
    identity,
    ctx,
    async stop() {
      await server.shutdown();
      await backend.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Result of a subprocess run. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Options of {@linkcode tctl} and {@linkcode bash}. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Text for standard input. */
  stdin?: string;
}

async function run(cmd: string, args: string[], options: RunOptions): Promise<RunResult> {
  const env: Record<string, string> = { NO_COLOR: "1", ...options.env };
  // A test must not pick up the developer's own tctl settings.
  for (const name of ["TELEPORT_AUTH_SERVER", "TELEPORT_IDENTITY_FILE"]) {
    if (!(name in env)) env[name] = "";
  }
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `deno run -A runtime-adapters/deno/entry/tctl.ts ...args`. */
export function tctl(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", TCTL, ...args], options);
}

/** Runs `bash -c script` (with the tctl wrapper first on PATH when `binDir` is given). */
export function bash(script: string, binDir: string, options: RunOptions = {}): Promise<RunResult> {
  return run("bash", ["-c", script], {
    ...options,
    env: { PATH: `${binDir}:${Deno.env.get("PATH") ?? ""}`, ...options.env },
  });
}
