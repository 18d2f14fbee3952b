/**
 * Test fixture for the agent: a real auth service (bootstrapped cluster,
 * hono app) over a MemoryBackend, with a clock tests can move forward,
 * resource helpers, and HTTPS serving on loopback for subprocess tests.
 *
 * @module
 */
import { boundKeypairToken } from "../../src/resources/token_rules.ts";
import { serveService } from "../../runtime-adapters/deno/serve.ts";
import type { BotInstance, Lock, Token } from "../../src/resources/schemas.ts";
import {
  bootstrapCluster,
  caPin,
  createApp,
  issueServerCertificate,
  type ServerContext,
} from "../../src/server/mod.ts";
import {
  getResource,
  listResources,
  putResource,
  requestTokenRotation,
} from "../../src/server/resources/mod.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import { silentLogger } from "../../src/util/log.ts";

const ADMIN = { user: "admin" };

/** A served cluster. */
export interface Served {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  address: string;
  /** Port. */
  port: number;
  /** Stops serving. */
  stop(): Promise<void>;
}

/** A test cluster. */
export interface Cluster {
  /** The server context. */
  ctx: ServerContext;
  /** Cluster time. */
  now(): Date;
  /** In-process fetch into the app (no network). */
  fetch: typeof fetch;
  /** The host CA pin, as `tctl status` prints it. */
  pin: string;
  /** The host CA certificate, PEM. */
  hostCaPem: string;
  /** Creates bot `name`. */
  createBot(name: string): Promise<void>;
  /** Creates (or replaces) a bound_keypair token; returns the registration secret, if any. */
  createToken(
    name: string,
    bot: string,
    boundKeypair?: Record<string, unknown>,
  ): Promise<string | undefined>;
  /** Reads a token. */
  token(name: string): Promise<Token>;
  /** Sets `spec.bound_keypair.recovery.limit`, keeping the status (an admin exemption). */
  setRecoveryLimit(name: string, limit: number): Promise<void>;
  /** Requests a rotation at the next join. */
  rotate(name: string): Promise<void>;
  /** All locks. */
  locks(): Promise<Lock[]>;
  /** All instances of a bot. */
  instances(bot: string): Promise<BotInstance[]>;
  /** Serves the app over HTTPS on 127.0.0.1 (port 0 picks one). */
  serve(port?: number): Promise<Served>;
}

/** Bootstraps a fresh cluster. */
export async function newCluster(clusterName = "example.com"): Promise<Cluster> {
  const now = () => new Date();
  const backend = new MemoryBackend(() => now().getTime());
  const ctx = await bootstrapCluster(backend, {
    clusterName,
    now,
    log: silentLogger,
    version: "0.1.0",
  });
  const app = createApp(ctx);
  const fetchApp = ((input: string | URL | Request, init?: RequestInit) =>
    Promise.resolve(
      app.fetch(new Request(input, init), { remoteAddr: "127.0.0.1" }),
    )) as typeof fetch;
  const cluster: Cluster = {
    ctx,
    now,
    fetch: fetchApp,
    pin: await caPin(ctx.cas.host),
    hostCaPem: ctx.cas.host.tls!.certPem,
    async createBot(name) {
      await putResource(
        ctx,
        {
          kind: "bot",
          version: "v1",
          metadata: { name },
          spec: { roles: [], traits: [] },
        },
        "create",
        ADMIN,
      );
    },
    async createToken(name, bot, boundKeypair = {}) {
      const r = await putResource(
        ctx,
        boundKeypairToken(name, bot, {
          onboarding: {},
          recovery: { limit: 1, mode: "standard" },
          ...boundKeypair,
        }),
        "upsert",
        ADMIN,
      );
      return (r.stored.resource as Token).status?.bound_keypair?.registration_secret;
    },
    async token(name) {
      const t = await getResource(ctx, "token", name);
      if (!t) throw new Error(`no token ${name}`);
      return t.resource as Token;
    },
    async setRecoveryLimit(name, limit) {
      // A copy: what a read returns is shared with other readers, and frozen.
      const t = structuredClone(await cluster.token(name));
      t.spec.bound_keypair.recovery.limit = limit;
      delete t.status;
      await putResource(ctx, t, "upsert", ADMIN);
    },
    async rotate(name) {
      await requestTokenRotation(ctx, name);
    },
    async locks() {
      return (await listResources(ctx, "lock", { limit: 1000 })).items.map((s) =>
        s.resource as Lock
      );
    },
    async instances(bot) {
      return (await listResources(ctx, "bot_instance", { bot, limit: 1000 })).items
        .map((s) => s.resource as BotInstance);
    },
    async serve(port = 0) {
      const cert = await issueServerCertificate(ctx, {
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"],
      });
      // The socket of the server behind the front, in a private directory of its own.
      const sockets = await Deno.makeTempDir({ prefix: "kb-cluster-front-" });
      const server = await serveService(app, {
        hostname: "127.0.0.1",
        port,
        tls: { cert: cert.certPem, key: cert.keyPem },
        socketDir: `${sockets}/front`,
        log: silentLogger,
      });
      return {
        url: server.url,
        address: `127.0.0.1:${server.addr.port}`,
        port: server.addr.port,
        stop: async () => {
          await server.shutdown();
          await Deno.remove(sockets, { recursive: true });
        },
      };
    },
  };
  return cluster;
}

/**
 * A fresh cluster with bot `example` and its bound-keypair token `example`
 * (standard recovery, `recoveryLimit` of them), and the token's registration
 * secret: the setup most agent and tbot tests start from.
 */
export async function clusterWithBot(
  recoveryLimit = 1,
): Promise<{ cluster: Cluster; secret: string }> {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const secret = (await cluster.createToken("example", "example", {
    recovery: { limit: recoveryLimit, mode: "standard" },
  }))!;
  return { cluster, secret };
}
