/**
 * Harness for running tbot as a real subprocess, with the permission flags
 * of the `tbot` task in deno.json, against a test cluster served over HTTPS.
 *
 * @module
 */
import { waitUntil } from "../_wait.ts";
import { TBOT_DENO_FLAGS } from "../../runtime-adapters/deno/tbot_main.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The tbot entry point. */
export const TBOT_MAIN = `${ROOT}runtime-adapters/deno/entry/tbot.ts`;

/**
 * The variables that decide security which tbot must read when set, other than
 * the configuration's (with -c given): a narrowed --allow-env names them.
 */
export const TBOT_SECURITY_VARIABLES: readonly string[] = [
  "TBOT_STORAGE_KEK",
  "TBOT_STORAGE_KEK_PATH",
  "TBOT_BOUND_KEYPAIR_STATIC_KEY",
  "TBOT_REGISTRATION_SECRET",
];

/** Result of a finished tbot run. */
export interface TbotRun {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error (the log). */
  stderr: string;
}

/** The argv that runs tbot from source (or from `entry`, with `denoFlags` added). */
export function tbotArgv(
  args: string[],
  o: Pick<TbotProcessOptions, "entry" | "denoFlags"> = {},
): string[] {
  return ["run", ...TBOT_DENO_FLAGS, ...o.denoFlags ?? [], o.entry ?? TBOT_MAIN, ...args];
}

/** How a tbot process is started. */
export interface TbotProcessOptions {
  /** Runs tbot under this umask (octal, e.g. `"000"`), through `sh -c 'umask …; exec …'`. */
  umask?: string;
  /** Entry point instead of {@linkcode TBOT_MAIN} (the `tbot` task's launcher). */
  entry?: string;
  /** Deno flags after the `tbot` task's. */
  denoFlags?: string[];
}

/** The program and arguments that start tbot with `args`. */
function tbotCommand(args: string[], o: TbotProcessOptions): [string, string[]] {
  const argv = tbotArgv(args, o);
  if (o.umask === undefined) return [Deno.execPath(), argv];
  if (!/^[0-7]{3,4}$/.test(o.umask)) throw new Error(`bad umask ${o.umask}`);
  return ["sh", ["-c", `umask ${o.umask}; exec "$0" "$@"`, Deno.execPath(), ...argv]];
}

/** Environment without the variables tbot reads, so the host's settings do not leak in. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env = Deno.env.toObject();
  for (const k of Object.keys(env)) {
    if (k.startsWith("TBOT_") || k.startsWith("TELEPORT_")) delete env[k];
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

/** Runs tbot to completion. */
export async function runTbot(
  args: string[],
  env: Record<string, string> = {},
  o: TbotProcessOptions = {},
): Promise<TbotRun> {
  const [program, argv] = tbotCommand(args, o);
  const out = await new Deno.Command(program, {
    args: argv,
    env: cleanEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A tbot daemon running in the background. */
export interface TbotDaemon {
  /** The child process. */
  child: Deno.ChildProcess;
  /** Log lines so far. */
  log(): string;
  /** Resolves when a log line matches `re` (bounded wait). */
  waitForLog(re: RegExp): Promise<void>;
  /** Sends a signal. */
  kill(signal: Deno.Signal): void;
  /** Waits for exit; returns the code. */
  exited(): Promise<number>;
}

/** Starts tbot in the background. */
export function spawnTbot(
  args: string[],
  env: Record<string, string> = {},
  o: TbotProcessOptions = {},
): TbotDaemon {
  const [program, argv] = tbotCommand(args, o);
  const child = new Deno.Command(program, {
    args: argv,
    env: cleanEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  let status: Promise<number> | undefined;
  return {
    child,
    log: () => text,
    async waitForLog(re) {
      await waitUntil(() => re.test(text), `tbot to log ${re}`, {
        timeoutMs: 30_000,
        intervalMs: 25,
      }).catch(() => {
        throw new Error(`tbot never logged ${re}; log so far:\n${text}`);
      });
    },
    kill: (signal) => child.kill(signal),
    exited: () => status ??= Promise.all([child.status, pump]).then(([s]) => s.code),
  };
}

/** Options of {@linkcode tbotYaml}. */
export interface YamlOptions {
  /** `auth_server` value. */
  address: string;
  /** Storage directory (the database file with `storageType: deno_kv`). */
  storage: string;
  /** `storage.type` (default `directory`). */
  storageType?: "directory" | "deno_kv";
  /** `storage.kek_path`. */
  kekPath?: string;
  /** `ca_pins`. */
  pins?: string[];
  /** `ca_path`. */
  caPath?: string;
  /** Registration secret. */
  secret?: string;
  /** Identity output directory. */
  output?: string;
  /** Extra top-level YAML lines. */
  extra?: string;
}

/** A tbot.yaml in the seed guide's shape. */
export function tbotYaml(o: YamlOptions): string {
  return [
    "version: v2",
    `auth_server: ${o.address}`,
    "onboarding:",
    "  join_method: bound_keypair",
    "  token: example",
    ...(o.pins ? [`  ca_pins: [${o.pins.map((p) => `"${p}"`).join(", ")}]`] : []),
    ...(o.caPath ? [`  ca_path: ${o.caPath}`] : []),
    ...(o.secret ? ["  bound_keypair:", `    registration_secret: ${o.secret}`] : []),
    "storage:",
    `  type: ${o.storageType ?? "directory"}`,
    `  path: ${o.storage}`,
    ...(o.kekPath ? [`  kek_path: ${o.kekPath}`] : []),
    ...(o.output
      ? [
        "outputs:",
        "  - type: identity",
        "    destination:",
        "      type: directory",
        `      path: ${o.output}`,
      ]
      : ["outputs: []"]),
    ...(o.extra ? [o.extra] : []),
    "",
  ].join("\n");
}

/** Every file in a directory with its content, for "nothing changed" checks. */
export async function dirSnapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name !== ".write-test") {
      out[e.name] = await Deno.readTextFile(`${dir}/${e.name}`);
    }
  }
  return out;
}

/** A free loopback TCP port. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
