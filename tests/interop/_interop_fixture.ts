/**
 * Interop fixture: a real auth service on loopback HTTP, bots created as an
 * admin would, and tbot's oneshot run (config parsing, bound-keypair join,
 * outputs) writing into temporary directories — the files the real tools
 * are then pointed at.
 *
 * @module
 */
import { boundKeypairToken } from "../../src/resources/token_rules.ts";
import { runBot } from "../../src/agent/bot.ts";
import { createBotApi } from "../../src/agent/bot_api.ts";
import { StoredClientState } from "../../src/agent/client_state.ts";
import { type Clock, systemClock } from "../../src/agent/clock.ts";
import { parseConfig } from "../../src/agent/config/load.ts";
import { sendHeartbeat } from "../../src/agent/heartbeat.ts";
import { IdentityService } from "../../src/agent/identity_service.ts";
import { joinTransport } from "../../src/agent/join_client.ts";
import { Wakeup } from "../../src/agent/runner/mod.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { TbotMetrics } from "../../src/agent/metrics.ts";
import { createOutputs } from "../../src/agent/outputs/mod.ts";
import { ReadinessRegistry } from "../../src/agent/readiness.ts";
import { createApp } from "../../src/server/app.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { putResource } from "../../src/server/resources/mod.ts";
import type { CreatableResource } from "../../src/resources/validate.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import { silentLogger } from "../../src/util/log.ts";
import { DirectoryStorage } from "../../runtime-adapters/deno/dir_storage.ts";
import { serveApp } from "../../runtime-adapters/deno/serve.ts";

/** A running auth service. */
export interface Cluster {
  /** Its context (for admin-side setup). */
  ctx: ServerContext;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Shifts the auth service's clock by `ms` from real time (0 restores it). */
  setClockOffset(ms: number): void;
  /** Stops the server. */
  stop(): Promise<void>;
}

/** Starts an auth service for cluster `name` on a free loopback port. */
export async function startCluster(name: string): Promise<Cluster> {
  let offset = 0;
  const ctx = await bootstrapCluster(new MemoryBackend(), {
    clusterName: name,
    now: () => new Date(Date.now() + offset),
    log: silentLogger,
    version: "0.0.0-interop",
  });
  const server = serveApp(createApp(ctx), { hostname: "127.0.0.1", port: 0 });
  return {
    ctx,
    url: server.url,
    setClockOffset: (ms) => (offset = ms),
    stop: () => server.shutdown(),
  };
}

async function put(ctx: ServerContext, r: CreatableResource): Promise<void> {
  await putResource(ctx, r, "upsert", { user: "admin" });
}

/** What a test bot's role grants. */
export interface BotGrants {
  /** `allow.logins`. */
  logins?: string[];
  /** `logins` trait values. */
  traitLogins?: string[];
  /** Allow `create` on `host_cert`. */
  hostCerts?: boolean;
  /** `allow.workload_identity_labels`. */
  workloadLabels?: Record<string, string[]>;
}

/** Creates role `<bot>-role`, bot `<bot>` and token `<bot>-token`; returns the registration secret. */
export async function addBot(ctx: ServerContext, bot: string, g: BotGrants): Promise<string> {
  const secret = crypto.randomUUID();
  await put(ctx, {
    kind: "role",
    version: "v7",
    metadata: { name: `${bot}-role` },
    spec: {
      allow: {
        logins: g.logins ?? [],
        ...(g.hostCerts ? { rules: [{ resources: ["host_cert"], verbs: ["create"] }] } : {}),
        ...(g.workloadLabels ? { workload_identity_labels: g.workloadLabels } : {}),
      },
    },
  });
  await put(ctx, {
    kind: "bot",
    version: "v1",
    metadata: { name: bot },
    spec: {
      roles: [`${bot}-role`],
      traits: g.traitLogins ? [{ name: "logins", values: g.traitLogins }] : [],
    },
  });
  await put(
    ctx,
    boundKeypairToken(`${bot}-token`, bot, {
      onboarding: { registration_secret: secret },
      recovery: { limit: 1, mode: "" },
    }),
  );
  return secret;
}

/** Creates workload identity `name` with label `env: dev` and SPIFFE path `/bot/{{ user.bot_name }}`. */
export async function addWorkloadIdentity(ctx: ServerContext, name: string): Promise<void> {
  await put(ctx, {
    kind: "workload_identity",
    version: "v1",
    metadata: { name, labels: { env: "dev" } },
    spec: { spiffe: { id: "/bot/{{ user.bot_name }}" } },
  });
}

/** Options of {@linkcode runTbot}. */
export interface TbotRunOptions {
  /** Bot `credential_ttl` (default 1h). */
  credentialTtl?: string;
  /** Bot `renewal_interval` (default 20m). */
  renewalInterval?: string;
  /** Oneshot (default) or daemon. */
  oneshot?: boolean;
  /** The agent's clock (default: the system clock). */
  clock?: Clock;
  /** Readiness registry to report into. */
  readiness?: ReadinessRegistry;
  /** Stops a daemon. */
  signal?: AbortSignal;
}

/**
 * Runs tbot for `bot` with the YAML `services` block, as `tbot start -c
 * tbot.yaml` does: parse the config, join, write the outputs (and in daemon
 * mode keep renewing until `signal` aborts).
 */
export async function runTbot(
  cluster: Cluster,
  bot: string,
  secret: string,
  servicesYaml: string,
  options: TbotRunOptions = {},
): Promise<void> {
  const yaml = [
    "version: v2",
    `auth_server: ${cluster.url}`,
    "insecure: true",
    `oneshot: ${options.oneshot ?? true}`,
    `credential_ttl: ${options.credentialTtl ?? "1h"}`,
    `renewal_interval: ${options.renewalInterval ?? "20m"}`,
    "onboarding:",
    "  join_method: bound_keypair",
    `  token: ${bot}-token`,
    "  bound_keypair:",
    `    registration_secret: ${secret}`,
    "storage:",
    "  type: memory",
    "services:",
    servicesYaml,
  ].join("\n");
  const config = parseConfig(yaml, `${bot}.yaml`);
  const clock = options.clock ?? systemClock;
  const storage = new MemoryStorage();
  const clientState = await StoredClientState.load(storage, silentLogger);
  const fetchFn: typeof fetch = (input, init) => fetch(input, init);
  const identity = new IdentityService({
    storage,
    clientState,
    tokenName: config.onboarding.token,
    credentialTtlMs: config.credential_ttl,
    registrationSecret: secret,
    ...joinTransport(cluster.url, fetchFn),
    clock,
    log: silentLogger,
  }, null);
  await runBot({
    config,
    identity,
    outputs: createOutputs(config.services, (d) => new DirectoryStorage(d.path), {
      api: createBotApi({ baseUrl: cluster.url, fetch: fetchFn }),
      credentialTtlMs: config.credential_ttl,
      absolutePath: (p) => p,
    }),
    heartbeat: (id, body, signal) =>
      sendHeartbeat({ baseUrl: cluster.url, fetch: fetchFn, identity: id, body, signal }),
    host: { version: "interop", hostname: "interop", os: "linux", architecture: "x86_64" },
    clock,
    // No jitter: a daemon's intervals are exactly as configured.
    random: () => 0,
    log: silentLogger,
    readiness: options.readiness ?? new ReadinessRegistry(),
    metrics: new TbotMetrics("interop"),
    signal: options.signal ?? new AbortController().signal,
    wakeup: new Wakeup(),
    server: cluster.url,
    tokenName: config.onboarding.token,
    staticKey: false,
  });
}

/** {@linkcode runTbot} in oneshot mode. */
export function runTbotOnce(
  cluster: Cluster,
  bot: string,
  secret: string,
  servicesYaml: string,
  options: { credentialTtl?: string } = {},
): Promise<void> {
  return runTbot(cluster, bot, secret, servicesYaml, { ...options, oneshot: true });
}

/** Output of a finished command. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Runs a command to completion; `input` is its standard input (none when absent). */
export async function run(
  cmd: string,
  args: string[],
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<CommandResult> {
  const child = new Deno.Command(cmd, {
    args,
    env: options.env,
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.input));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A free TCP port on 127.0.0.1 (closed again; the caller binds it next). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Reads a text file. */
export function read(path: string): string {
  return Deno.readTextFileSync(path);
}

/** A long-running child process whose output (stdout and stderr) is collected line by line. */
export class Daemon {
  #child: Deno.ChildProcess;
  #lines: string[] = [];
  #waiters: { re: RegExp; resolve: () => void }[] = [];
  #pump: Promise<unknown>;

  /** Starts `cmd` with `args`. */
  constructor(cmd: string, args: string[]) {
    this.#child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pump = Promise.all([this.#read(this.#child.stdout), this.#read(this.#child.stderr)]);
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) this.#add(line);
    }
    if (buffer) this.#add(buffer);
  }

  #add(line: string): void {
    this.#lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.re.test(line)) return true;
      w.resolve();
      return false;
    });
  }

  /**
   * Resolves when an output line matches `re` (at once if one already did);
   * rejects with the log if the process exits first.
   */
  waitFor(re: RegExp): Promise<void> {
    if (this.#lines.some((l) => re.test(l))) return Promise.resolve();
    const found = new Promise<void>((resolve) => this.#waiters.push({ re, resolve }));
    const exited = this.#child.status.then(async (s) => {
      await this.#pump;
      if (this.#lines.some((l) => re.test(l))) return;
      throw new Error(`process exited (code ${s.code}) before printing ${re}:\n${this.log}`);
    });
    return Promise.race([found, exited]);
  }

  /** Everything written so far. */
  get log(): string {
    return this.#lines.join("\n");
  }

  /** Waits for the process to exit by itself; returns its exit code. */
  async exited(): Promise<number> {
    const s = await this.#child.status;
    await this.#pump;
    return s.code;
  }

  /** Stops the process (SIGTERM) and waits for it and its output. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await this.exited();
  }
}
