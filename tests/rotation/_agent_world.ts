/**
 * The world of the agent-side rotation tests: one real auth service process
 * (HTTPS, Deno KV data directory), or HAProxy in front of several on
 * PostgreSQL (tests/ha/_cluster.ts), driven by real `tctl` processes, bots
 * and tokens created through the admin API, and real `tbot start` daemons
 * that trust it by CA pin and renew every second or two. What a test counts comes
 * from the daemons' own logs and the server's records: renewals, retried and
 * unretried failures, recoveries (`recovery_count`) and locks.
 *
 * @module
 */
import {
  type AuthServiceProcess,
  spawnAuthService,
} from "../../runtime-adapters/deno/auth_process.ts";
import { createTctlFetch } from "../../runtime-adapters/deno/tctl_transport.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { CaResponse } from "../../src/protocol/discovery.ts";
import { Bot, type Lock, Role, type Token } from "../../src/resources/schemas.ts";
import { boundKeypairToken } from "../../src/resources/token_rules.ts";
import { spawnTbot, type TbotDaemon } from "../tbot/_harness.ts";
import { type RunResult, tctl } from "../tctl/_harness.ts";
import { waitUntil } from "../_wait.ts";

/** A bot of the world: its token, storage and output directories, and daemon. */
export interface WorldBot {
  /** Bot (and token) name. */
  name: string;
  /** Storage directory. */
  storage: string;
  /** `identity` output directory (with `ssh_config` and `known_hosts`). */
  identityDir: string;
  /** `ssh_host` output directory, when the bot has one. */
  hostDir?: string;
  /** `workload-identity-x509` and `-jwt` output directories, when the bot has them. */
  workload?: { x509: string; jwt: string };
  /** The running daemon (undefined while stopped). */
  daemon?: TbotDaemon;
  /** The config file. */
  config: string;
  /** Logs of the daemon runs before the current one. */
  pastLog: string;
}

/** Options of {@linkcode RotationWorld.addBot}. */
export interface BotOptions {
  /** Add an `ssh_host` output for principals `127.0.0.1` and `localhost`. */
  sshHost?: boolean;
  /** Add X.509 and JWT SVID outputs of workload identity `svc` (audience `rotation-test`). */
  workload?: boolean;
  /** `renewal_interval` (default `1s`). */
  renewal?: string;
  /** `credential_ttl` (default `2m`). */
  ttl?: string;
}

/** What a bot's log says happened. */
export interface LogCounts {
  /** Successful refreshes. */
  renewals: number;
  /** Attempts that failed and were retried within their iteration. */
  retried: number;
  /** Iterations that failed after all retries (ERROR lines). */
  unretried: number;
  /** Recovery joins the bot logged. */
  recoveries: number;
}

/** Where bots and admin calls go: an auth process, or a load balancer in front of several. */
export type AuthEndpoint = Pick<AuthServiceProcess, "url" | "addr" | "caPin">;

/** The running world. */
export interface RotationWorld<A extends AuthEndpoint = AuthServiceProcess>
  extends AsyncDisposable {
  /** Scratch directory. */
  dir: string;
  /** The auth process (or what stands for it). */
  auth: A;
  /**
   * Its admin API as of now: the auth service re-issues the admin identity
   * when a user CA rotation changes the signing key, so it is read afresh
   * (verification off: the test's own channel is not under test).
   */
  admin(): Promise<AdminApiClient>;
  /** `tctl --auth-server … -i admin-identity ARGS`. */
  tctl(args: string[]): Promise<RunResult>;
  /** Like {@linkcode tctl}, failing the test with its output unless it exits 0. */
  tctlOk(args: string[]): Promise<string>;
  /** An unauthenticated `GET` of `path` (verification off). */
  get(path: string): Promise<Response>;
  /** `GET /v1/ca/{type}` as served now. */
  ca(type: "host" | "user"): Promise<CaResponse>;
  /** Creates role, bot and token `name` (recovery limit 5) and writes its tbot.yaml. */
  addBot(name: string, o?: BotOptions): Promise<WorldBot>;
  /** Starts the bot's daemon; resolves after its first renewal or join. */
  start(bot: WorldBot): Promise<void>;
  /** Stops the bot's daemon (SIGTERM) and waits for it. */
  stop(bot: WorldBot): Promise<void>;
  /** The token's `recovery_count`. */
  recoveries(name: string): Promise<number>;
  /** All locks. */
  locks(): Promise<Lock[]>;
}

/** Everything the bot's daemons logged so far. */
export function botLog(bot: WorldBot): string {
  return bot.pastLog + (bot.daemon?.log() ?? "");
}

/** Counts the events in a tbot log. */
export function countLog(log: string): LogCounts {
  const lines = log.split("\n");
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  return {
    renewals: count(/renewed the bot identity/),
    retried: count(/failed; retrying/),
    unretried: count(/^\S+ ERROR /),
    recoveries: count(/recovered: joined again/),
  };
}

/** Waits until every bot logged `n` more renewals than in `before` (bounded). */
export async function renewalsPass(
  bots: WorldBot[],
  n: number,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const base = bots.map((b) => countLog(botLog(b)).renewals);
  await waitUntil(
    () => bots.every((b, i) => countLog(botLog(b)).renewals >= base[i] + n),
    `${n} renewals of every bot ${what}`,
    { timeoutMs, intervalMs: 100 },
  ).catch((e) => {
    const tails = bots.map((b) => `--- ${b.name}\n${botLog(b).split("\n").slice(-8).join("\n")}`);
    throw new Error(`${e.message}\n${tails.join("\n")}`);
  });
}

/** Starts the auth service for cluster `rotation.example` in a fresh scratch directory. */
export async function startRotationWorld(): Promise<RotationWorld> {
  const dir = await Deno.makeTempDir({ prefix: "keybound-rot-agent-" });
  const dataDir = `${dir}/data`;
  const auth = await spawnAuthService({
    dataDir,
    args: ["--cluster-name", "rotation.example"],
    captureLog: true,
  }).catch(async (err) => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  });
  return rotationWorldOn(auth, {
    dir,
    identity: `${dataDir}/admin-identity`,
    onDispose: () => auth.stop(),
  });
}

/**
 * A world around an auth service started elsewhere, reached at `auth` with
 * the admin identity file `identity`; its bots live in `dir` (created, and
 * removed at the end). Disposing it stops the bots, then runs `onDispose`.
 */
export async function rotationWorldOn<A extends AuthEndpoint>(
  auth: A,
  o: { dir: string; identity: string; onDispose?: () => Promise<unknown> },
): Promise<RotationWorld<A>> {
  const { dir, identity } = o;
  await Deno.mkdir(dir, { recursive: true });
  const bots: WorldBot[] = [];
  let workloadIdentity = false;
  const dispose = async () => {
    await Promise.all(bots.map((b) => world.stop(b).catch(() => {})));
    await o.onDispose?.().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const insecure = await createTctlFetch({ baseUrl: auth.url, hostCaPems: [], insecure: true });
  const admin = async () => {
    const id = await parseIdentityFile(await Deno.readTextFile(identity));
    return new AdminApiClient({
      baseUrl: auth.url,
      signer: { certDer: id.certDer, privateKey: id.privateKey },
      fetch: insecure,
    });
  };
  const put = async (r: unknown, mode: "create" | "upsert" = "create") =>
    (await admin()).put(r as Parameters<AdminApiClient["put"]>[0], mode);
  const world: RotationWorld<A> = {
    dir,
    auth,
    admin,
    tctl: (args) => tctl(["--auth-server", auth.addr, "-i", identity, ...args]),
    async tctlOk(args) {
      const r = await world.tctl(args);
      if (r.code !== 0) {
        throw new Error(`tctl ${args.join(" ")} exited ${r.code}:\n${r.stdout}${r.stderr}`);
      }
      return r.stdout;
    },
    get: (path) => insecure(`${auth.url}${path}`),
    async ca(type) {
      return CaResponse.parse(await (await world.get(`/v1/ca/${type}`)).json());
    },
    async addBot(name, o = {}) {
      await put(Role.parse({
        kind: "role",
        version: "v7",
        metadata: { name: `${name}-role` },
        spec: {
          allow: {
            logins: ["root"],
            rules: [{ resources: ["host_cert"], verbs: ["create"] }],
            ...(o.workload ? { workload_identity_labels: { env: ["dev"] } } : {}),
          },
        },
      }));
      await put(Bot.parse({
        kind: "bot",
        version: "v1",
        metadata: { name },
        spec: { roles: [`${name}-role`] },
      }));
      const { item } = await put(
        boundKeypairToken(name, name, { onboarding: {}, recovery: { limit: 5, mode: "standard" } }),
      );
      const secret = (item as Token).status!.bound_keypair!.registration_secret!;
      if (o.workload && !workloadIdentity) {
        workloadIdentity = true;
        await put({
          kind: "workload_identity",
          version: "v1",
          metadata: { name: "svc", labels: { env: "dev" } },
          spec: { spiffe: { id: "/bot/{{ user.bot_name }}" } },
        });
      }
      const bot: WorldBot = {
        name,
        storage: `${dir}/${name}/storage`,
        identityDir: `${dir}/${name}/identity`,
        ...(o.sshHost ? { hostDir: `${dir}/${name}/host` } : {}),
        ...(o.workload
          ? { workload: { x509: `${dir}/${name}/x509`, jwt: `${dir}/${name}/jwt` } }
          : {}),
        config: `${dir}/${name}/tbot.yaml`,
        pastLog: "",
      };
      await Deno.mkdir(`${dir}/${name}`, { recursive: true });
      await Deno.writeTextFile(
        bot.config,
        [
          "version: v2",
          `auth_server: ${auth.addr}`,
          `renewal_interval: ${o.renewal ?? "1s"}`,
          `credential_ttl: ${o.ttl ?? "2m"}`,
          "onboarding:",
          "  join_method: bound_keypair",
          `  token: ${name}`,
          `  ca_pins: ["${auth.caPin}"]`,
          "  bound_keypair:",
          `    registration_secret: ${secret}`,
          "storage:",
          "  type: directory",
          `  path: ${bot.storage}`,
          "services:",
          "  - type: identity",
          `    destination: {type: directory, path: ${bot.identityDir}}`,
          ...(bot.hostDir
            ? [
              "  - type: ssh_host",
              `    destination: {type: directory, path: ${bot.hostDir}}`,
              "    principals: [127.0.0.1, localhost]",
            ]
            : []),
          ...(bot.workload
            ? [
              "  - type: workload-identity-x509",
              `    destination: {type: directory, path: ${bot.workload.x509}}`,
              "    selector: {name: svc}",
              "  - type: workload-identity-jwt",
              `    destination: {type: directory, path: ${bot.workload.jwt}}`,
              "    selector: {name: svc}",
              "    audiences: [rotation-test]",
            ]
            : []),
          "",
        ].join("\n"),
      );
      bots.push(bot);
      return bot;
    },
    async start(bot) {
      bot.daemon = spawnTbot(["start", "-c", bot.config]);
      await bot.daemon.waitForLog(/renewed the bot identity|joined the cluster|recovered/);
      // The join is logged before the outputs are written: a step reading a workload output at
      // once found none under load (CI rehearsal, session 11).
      const workload = bot.workload;
      if (workload) {
        const files = [`${workload.x509}/svid.pem`, `${workload.x509}/svid_bundle.pem`];
        files.push(`${workload.jwt}/jwt_svid`);
        await waitUntil(
          async () =>
            (await Promise.all(files.map((f) => Deno.stat(f).then(() => true, () => false))))
              .every(Boolean),
          `${bot.name}'s workload outputs`,
          { timeoutMs: 30_000, intervalMs: 50 },
        );
      }
    },
    async stop(bot) {
      const d = bot.daemon;
      if (!d) return;
      d.kill("SIGTERM");
      await d.exited();
      bot.pastLog += d.log();
      bot.daemon = undefined;
    },
    async recoveries(name) {
      const t = (await (await admin()).get("token", name)) as Token;
      return t.status!.bound_keypair!.recovery_count;
    },
    async locks() {
      return (await (await admin()).list("lock")) as Lock[];
    },
    [Symbol.asyncDispose]: dispose,
  };
  return world;
}
