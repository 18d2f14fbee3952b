/**
 * Test fixture for the join server: a real auth app on loopback HTTP over a
 * Deno KV file in a temp dir with a movable clock, resources written straight
 * into the backend, an in-memory bound-key store, and a small bot that keeps
 * its identity and join state the way tbot does.
 *
 * @module
 */
import { boundKeypairToken } from "../../src/resources/token_rules.ts";
import { openTestBackend } from "../workers/_test_backend.ts";
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import { KeyboundError } from "../../src/errors.ts";
import { generateKeyPair, type KeyAlgorithm } from "../../src/crypto/keys.ts";
import { randomHex } from "../../src/crypto/random.ts";
import { certificatesFromPem } from "../../src/pki/mod.ts";
import type { JoinResult } from "../../src/protocol/messages.ts";
import type { Bot, Lock, Role, Token } from "../../src/resources/schemas.ts";
import { type AppOptions, createApp } from "../../src/server/app.ts";
import type { FetchApp } from "../../runtime-adapters/deno/serve.ts";
import { type AuditEvent, type AuditEventType, listAudit } from "../../src/server/audit.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { resourceKey, resourcePrefix } from "../../src/server/keys.ts";
import { locksChangedMutation } from "../../src/server/locks.ts";
import type { Backend, JsonValue } from "../../src/storage/backend.ts";
import { silentLogger } from "../../src/util/log.ts";
import { MemoryKeyStore } from "../_key_store.ts";
import { assertEquals, assertRejects } from "../_assert.ts";

/** A settable clock shared by the cluster. */
export class Clock {
  /** Current time. */
  t = new Date(Math.floor(Date.now() / 1000) * 1000);
  /** Moves the clock by `seconds`. */
  advance(seconds: number): void {
    this.t = new Date(this.t.getTime() + seconds * 1000);
  }
}

/** A running auth service on loopback. */
export interface Harness {
  /** Server context. */
  ctx: ServerContext;
  /** `http://127.0.0.1:PORT`. */
  baseUrl: string;
  /** The cluster clock. */
  clock: Clock;
  /** The KV file. */
  path: string;
  /** Stops the server and closes the backend (the file stays). */
  stop(): Promise<void>;
  /** Stops, then starts a new process-equivalent on the same file. */
  restart(): Promise<Harness>;
  /** Stops and removes the temp dir. */
  close(): Promise<void>;
}

/** Wraps the served app (say, to change its answers as a newer server would). */
type Around = (app: FetchApp) => FetchApp;

async function serve(
  backend: Backend,
  path: string,
  dir: string,
  clock: Clock,
  options: AppOptions = {},
  around: Around = (app) => app,
): Promise<Harness> {
  const ctx = await bootstrapCluster(backend, {
    clusterName: "join.test",
    log: silentLogger,
    version: "0.0.0-test",
    now: () => clock.t,
  });
  const app = around(createApp(ctx, options));
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    (req, info) => app.fetch(req, { remoteAddr: (info.remoteAddr as Deno.NetAddr).hostname }),
  );
  const baseUrl = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.shutdown();
    await backend.close();
  };
  return {
    ctx,
    baseUrl,
    clock,
    path,
    stop,
    restart: async () => {
      await stop();
      return serve(await openTestBackend(path), path, dir, clock, options, around);
    },
    close: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Starts an auth service over a fresh KV file (`options`: the app's, e.g. a
 * rate limit; `around` wraps the app it serves).
 */
export async function startHarness(
  options: AppOptions = {},
  around?: Around,
): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "keybound-join-" });
  const path = `${dir}/auth.kv`;
  return serve(await openTestBackend(path), path, dir, new Clock(), options, around);
}

/** A second auth process on the same KV file (same cluster, own port); stop it with `stop`. */
export async function attachHarness(h: Harness): Promise<Harness> {
  return serve(await openTestBackend(h.path), h.path, "", h.clock);
}

/**
 * An auth process over `backend` (any backend: a wrapped one, PostgreSQL);
 * stop it with `stop`, which also closes the backend.
 */
export function harnessOn(backend: Backend, clock = new Clock()): Promise<Harness> {
  return serve(backend, "", "", clock);
}

/** Writes a resource straight into the backend (a lock with the lock-change marker, as the server does). */
export async function putResource(
  ctx: ServerContext,
  kind: "bot" | "token" | "role" | "lock",
  resource: Bot | Token | Role | Lock,
): Promise<void> {
  const r = await ctx.backend.commit({
    checks: [],
    mutations: [{
      type: "set",
      key: resourceKey(kind, resource.metadata.name),
      value: resource as unknown as JsonValue,
    }, ...(kind === "lock" ? [locksChangedMutation(ctx)] : [])],
  });
  if (!r.ok) throw new Error("write failed");
}

/** Creates bot `name`. */
export function putBot(
  ctx: ServerContext,
  name: string,
  spec: Partial<Bot["spec"]> = {},
): Promise<void> {
  return putResource(ctx, "bot", {
    kind: "bot",
    version: "v1",
    metadata: { name },
    spec: { roles: [], traits: [], ...spec },
  });
}

/** Options of {@linkcode putToken}. */
export interface TokenOptions {
  /** Bot the token binds. */
  botName: string;
  /** `onboarding.initial_public_key`. */
  initialPublicKey?: string;
  /** `onboarding.registration_secret`. */
  registrationSecret?: string;
  /** `onboarding.must_register_before`. */
  mustRegisterBefore?: string;
  /** `recovery.limit`. */
  limit?: number;
  /** `recovery.mode`. */
  mode?: "" | "standard" | "relaxed" | "insecure";
  /** `rotate_after`. */
  rotateAfter?: string;
  /** An explicit status (skips secret filling). */
  status?: NonNullable<Token["status"]>["bound_keypair"];
}

/**
 * Creates a token, filling the registration secret as reference §1.3 says:
 * nothing when a key is bound or pre-registered, else the admin's secret,
 * else 16 random bytes hex.
 */
export async function putToken(ctx: ServerContext, name: string, o: TokenOptions): Promise<Token> {
  const onboarding = {
    ...(o.initialPublicKey ? { initial_public_key: o.initialPublicKey } : {}),
    ...(o.registrationSecret ? { registration_secret: o.registrationSecret } : {}),
    ...(o.mustRegisterBefore ? { must_register_before: o.mustRegisterBefore } : {}),
  };
  let status = o.status;
  if (!status) {
    status = { recovery_count: 0 };
    if (!o.initialPublicKey) status.registration_secret = o.registrationSecret ?? randomHex(16);
  }
  const token: Token = {
    ...boundKeypairToken(name, o.botName, {
      onboarding,
      recovery: { limit: o.limit ?? 1, mode: o.mode ?? "" },
      ...(o.rotateAfter ? { rotate_after: o.rotateAfter } : {}),
    }),
    status: { bound_keypair: status },
  };
  await putResource(ctx, "token", token);
  return token;
}

/** Reads a token as stored. */
export async function getToken(ctx: ServerContext, name: string): Promise<Token> {
  const e = await ctx.backend.get<Token>(resourceKey("token", name));
  if (!e) throw new Error(`token ${name} missing`);
  return e.value;
}

/** Rewrites a stored token. */
export async function editToken(
  ctx: ServerContext,
  name: string,
  edit: (t: Token) => void,
): Promise<void> {
  const t = await getToken(ctx, name);
  edit(t);
  await putResource(ctx, "token", t);
}

/** The stored status of a token. */
export async function tokenStatus(ctx: ServerContext, name: string) {
  return (await getToken(ctx, name)).status!.bound_keypair!;
}

/** Every stored lock. */
export async function listLocks(ctx: ServerContext): Promise<Lock[]> {
  return (await ctx.backend.list<Lock>(resourcePrefix("lock"))).map((e) => e.value);
}

/** Audit events of one type, newest first. */
export async function events(ctx: ServerContext, type: AuditEventType): Promise<AuditEvent[]> {
  return (await listAudit(ctx, { type, limit: 1000 })).items;
}

export { MemoryKeyStore };

/** A bot that keeps its identity and join state between joins, as tbot does. */
export class TestBot {
  /** Current certificate (DER) and its key. */
  identity?: { certDer: Uint8Array; privateKey: CryptoKey };
  /** Last join state. */
  joinState?: string;
  /** Last result. */
  last?: JoinResult;
  /** Algorithm of the subject key each join generates (what its certificate certifies). */
  subjectAlg: KeyAlgorithm = "ES256";

  /**
   * @param h harness
   * @param tokenName token to join with
   * @param keys bound keys
   */
  constructor(
    public h: Harness,
    readonly tokenName: string,
    readonly keys = new MemoryKeyStore(),
  ) {}

  /** One join: a refresh when an identity is held (unless `recover`), else onboarding/recovery. */
  async join(
    o: { secret?: string; recover?: boolean; ttl?: number; fetch?: typeof fetch } = {},
  ): Promise<JoinResult> {
    const subjectKey = await generateKeyPair(this.subjectAlg);
    const result = await joinBoundKeypair({
      baseUrl: this.h.baseUrl,
      ...(o.fetch ? { fetch: o.fetch } : {}),
      tokenName: this.tokenName,
      subjectKey,
      ttlSeconds: o.ttl ?? 3600,
      keyStore: this.keys,
      ...(o.secret && !this.joinState ? { initialJoinSecret: o.secret } : {}),
      ...(this.joinState ? { previousJoinState: this.joinState } : {}),
      ...(this.identity && !o.recover ? { identity: this.identity } : {}),
    });
    this.identity = {
      certDer: certificatesFromPem(result.certificates.tls_cert)[0],
      privateKey: subjectKey.privateKey,
    };
    this.joinState = result.bound_keypair.join_state;
    this.last = result;
    return result;
  }
}

/** Asserts `fn` fails with a KeyboundError of `code` (and message part); returns it. */
export async function rejectsCode(
  fn: () => Promise<unknown>,
  code: string,
  includes?: string,
): Promise<KeyboundError> {
  const e = await assertRejects(fn, KeyboundError, includes);
  assertEquals(e.code, code, `error code (message: ${e.message})`);
  return e;
}

/** Posts raw JSON to a path; returns status and parsed body. */
export async function postRaw(
  h: Harness,
  path: string,
  body: string,
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(h.baseUrl + path, { method: "POST", headers, body });
  return { status: res.status, json: await res.json() };
}

/** Onboards a bot with a pre-registered key of `alg`; returns the bot after its first join. */
export async function onboardedBot(
  h: Harness,
  tokenName: string,
  o: Omit<TokenOptions, "initialPublicKey"> & { alg?: KeyAlgorithm },
): Promise<TestBot> {
  const bot = new TestBot(h, tokenName);
  const pub = await bot.keys.add(o.alg ?? "EdDSA");
  await putToken(h.ctx, tokenName, { ...o, initialPublicKey: pub });
  await bot.join();
  return bot;
}
