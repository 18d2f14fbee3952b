/**
 * The world of the randomised crash tests: one real auth service process
 * (plain HTTP on loopback unless asked for TLS, Deno KV data directory), its admin API, and
 * helpers to provision bots and tokens and to run tbot oneshot processes
 * that a test may `kill -9`.
 *
 * @module
 */
import {
  type AuthServiceProcess,
  spawnAuthService,
} from "../../runtime-adapters/deno/auth_process.ts";
import { denoPlatform } from "../../runtime-adapters/deno/tbot_main.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { runStart } from "../../src/cli/tbot/start.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { Bot, type Lock, Token } from "../../src/resources/schemas.ts";
import { tbotArgv } from "../tbot/_harness.ts";

/** The auth service and its admin API. */
export interface KillWorld {
  /** The running auth process (replaced by {@linkcode KillWorld.restart}). */
  auth: AuthServiceProcess;
  /** Admin API of the current process. */
  api: AdminApiClient;
  /** Scratch directory (removed by `close`). */
  dir: string;
  /** `kill -9` of the auth service (unless killed already), then a new one on the same data directory. */
  restart(): Promise<void>;
  /** Creates a bot. */
  createBot(name: string): Promise<void>;
  /** Creates a token for `bot`; returns its registration secret, if any. */
  createToken(name: string, bot: string, boundKeypair?: Record<string, unknown>): Promise<string>;
  /** The token's bound-keypair status. */
  status(name: string): Promise<NonNullable<NonNullable<Token["status"]>["bound_keypair"]>>;
  /** All locks. */
  locks(): Promise<Lock[]>;
  /** Stops everything and removes the scratch directory. */
  close(): Promise<void>;
}

/**
 * Starts the auth service in a fresh scratch directory (HTTPS with `tls`, else plain HTTP;
 * `authCommand` runs another build of it, such as a compiled binary).
 */
export async function startKillWorld(
  prefix: string,
  o: { tls?: boolean; authCommand?: string[] } = {},
): Promise<KillWorld> {
  const FLAGS = [...(o.tls ? [] : ["--insecure-no-tls"]), "--cluster-name", "crash.example"];
  const dir = await Deno.makeTempDir({ prefix });
  const dataDir = `${dir}/data`;
  let client: Deno.HttpClient | undefined;
  const connect = async (auth: AuthServiceProcess) => {
    const admin = await parseIdentityFile(await Deno.readTextFile(`${dataDir}/admin-identity`));
    client?.close();
    client = o.tls ? Deno.createHttpClient({ caCerts: admin.hostCaPems }) : undefined;
    const tls = client;
    return new AdminApiClient({
      baseUrl: auth.url,
      signer: { certDer: admin.certDer, privateKey: admin.privateKey },
      ...(tls
        ? { fetch: ((input, init) => fetch(input, { ...init, client: tls })) as typeof fetch }
        : {}),
    });
  };
  const spawn = () =>
    spawnAuthService({
      dataDir,
      args: FLAGS,
      ...(o.authCommand ? { command: o.authCommand } : {}),
    });
  const auth = await spawn();
  const world: KillWorld = {
    auth,
    api: await connect(auth),
    dir,
    async restart() {
      try {
        Deno.kill(world.auth.pid, "SIGKILL");
      } catch {
        // Already killed by the test.
      }
      await world.auth.stop().catch(() => {});
      world.auth = await spawn();
      world.api = await connect(world.auth);
    },
    async createBot(name) {
      await world.api.put(
        Bot.parse({ kind: "bot", version: "v1", metadata: { name }, spec: { roles: [] } }),
        "create",
      );
    },
    async createToken(name, bot, boundKeypair = {}) {
      const { item } = await world.api.put(
        Token.parse({
          kind: "token",
          version: "v2",
          metadata: { name },
          spec: {
            roles: ["Bot"],
            bot_name: bot,
            join_method: "bound_keypair",
            bound_keypair: { recovery: { limit: 1000, mode: "standard" }, ...boundKeypair },
          },
        }),
        "create",
      );
      return (item as Token).status?.bound_keypair?.registration_secret ?? "";
    },
    async status(name) {
      return ((await world.api.get("token", name)) as Token).status!.bound_keypair!;
    },
    async locks() {
      return (await world.api.list("lock")) as Lock[];
    },
    async close() {
      client?.close();
      await world.auth.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return world;
}

/** A tbot.yaml for a oneshot run through `server`: plain HTTP, or HTTPS trusted by `caPin`. */
export function oneshotYaml(o: {
  server: string;
  token: string;
  storage: string;
  secret?: string;
  caPin?: string;
}): string {
  return [
    "version: v2",
    `auth_server: ${o.server}`,
    "oneshot: true",
    ...(o.caPin ? [] : ["insecure: true"]),
    "onboarding:",
    "  join_method: bound_keypair",
    `  token: ${o.token}`,
    ...(o.caPin ? ["  ca_pins:", `    - ${o.caPin}`] : []),
    ...(o.secret ? ["  bound_keypair:", `    registration_secret: ${o.secret}`] : []),
    "storage:",
    "  type: directory",
    `  path: ${o.storage}`,
    "outputs: []",
    "",
  ].join("\n");
}

/** A tbot process. */
export interface TbotProcess {
  /** `kill -9` (no effect once it exited). */
  kill(): void;
  /** Resolves when it exited: code (null when killed by a signal) and log. */
  done: Promise<{ code: number | null; signal: string | null; log: string }>;
}

/** Longest a tbot run may take before the tests give up on it (a hang is a failure). */
export const RUN_LIMIT_MS = 90_000;

/**
 * Starts `tbot start -c <config>` (the `program` binary, such as a compiled tbot, if given);
 * killed after {@linkcode RUN_LIMIT_MS} at the latest.
 */
export function startTbot(config: string, program?: string): TbotProcess {
  const args = ["start", "-c", config];
  const child = new Deno.Command(program ?? Deno.execPath(), {
    args: program ? args : tbotArgv(args),
    // The test's environment (DENO_DIR and the like) without the variables tbot reads.
    env: Object.fromEntries(
      Object.entries({ ...Deno.env.toObject(), NO_COLOR: "1" }).filter(([k]) =>
        !k.startsWith("TBOT_") && !k.startsWith("TELEPORT_")
      ),
    ),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  let hung = false;
  const kill = () => {
    if (exited) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited in between.
    }
  };
  const watchdog = setTimeout(() => {
    hung = true;
    kill();
  }, RUN_LIMIT_MS);
  const log = new Response(child.stderr).text();
  const done = Promise.all([child.status, log]).then(([s, text]) => {
    exited = true;
    clearTimeout(watchdog);
    if (hung) return { code: -1, signal: null, log: text + "\n(hung: killed by the test)" };
    return { code: s.signal ? null : s.code, signal: s.signal, log: text };
  });
  return { kill, done };
}

/**
 * Runs `tbot start -c <config>` in this process, with the Deno platform of
 * the real binary (storage, lock, trust, journal replay) but no signal
 * handlers: the run after a kill, without paying a process start.
 */
export async function runTbotHere(config: string): Promise<{ code: number; log: string }> {
  let log = "";
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), RUN_LIMIT_MS);
  try {
    const code = await runStart({ config }, {
      ...denoPlatform,
      stderr: (line) => void (log += line + "\n"),
      onSignals: () => () => {},
    }, { signal: stop.signal });
    return stop.signal.aborted
      ? { code: -1, log: log + "(hung: stopped by the test)" }
      : { code, log };
  } finally {
    clearTimeout(timer);
  }
}
