/**
 * `BotIdentity`: a tbot that lives in a Durable Object. It joins the auth
 * service with `fetch` (bound-keypair joining, like tbot), keeps its bound
 * key, join state and credentials in the object's storage (sealed under
 * `TBOT_STORAGE_KEK` when set), and answers RPC calls for a JWT-SVID, its
 * X.509 identity and its readiness.
 *
 * Scheduling, retries, readiness and single-flight joins are the shared
 * agent runner's (`src/agent/runner/`); this object only wires it to its
 * storage and arms the runner's wake-ups as the object's alarm.
 *
 * @module
 */
import { type Clock, systemClock } from "../../src/agent/clock.ts";
import { StoredClientState } from "../../src/agent/client_state.ts";
import { type BotIdentity as AgentIdentity, loadIdentity } from "../../src/agent/identity.ts";
import { IdentityService } from "../../src/agent/identity_service.ts";
import { joinTransport } from "../../src/agent/join_client.ts";
import { replayJournal } from "../../src/agent/journal.ts";
import { describeJoinFailure } from "../../src/agent/refusal.ts";
import { BotRunner, type IdentitySource } from "../../src/agent/runner/mod.ts";
import { type Kek, parseKek, SealedStorage } from "../../src/agent/sealed_keys.ts";
import { isKeyboundError, KeyboundError } from "../../src/errors.ts";
import { createLogger, type Logger } from "../../src/util/log.ts";
import { type BotConfig, botConfig, type BotEnv } from "./bot_config.ts";
import type {
  BotIdentityRpc,
  BotReadiness,
  JwtSvid,
  RpcError,
  RpcResult,
  X509Credentials,
} from "./bot_identity_rpc.ts";
import { DoAgentStorage } from "./do_agent_storage.ts";
import { DurableObject } from "./durable_object.ts";
import type { DurableObjectState } from "./types.ts";
import { fetchJwtSvid } from "./workload_client.ts";

interface Loaded {
  config: BotConfig;
  runner: BotRunner;
}

/** What a test may put in place of the real join and clock. */
export interface RunnerSeams {
  /** Replaces the identity service (and its joins). */
  identity?: IdentitySource;
  /** Replaces the system clock. */
  clock?: Clock;
}

/** A join failure as data, with the advice tbot would log. */
function joinError(err: unknown, context: { tokenName: string; server: string }): RpcError {
  return {
    code: isKeyboundError(err) ? err.code : "INTERNAL",
    message: describeJoinFailure(err, { ...context, staticKey: false }),
  };
}

/** Any other failure as data. */
function callError(what: string, err: unknown): RpcError {
  return {
    code: isKeyboundError(err) ? err.code : "INTERNAL",
    message: `${what}: ${err instanceof Error ? err.message : String(err)}`,
  };
}

/** The bot's identity as a Durable Object (bind it as `BOT_IDENTITY`, SQLite-backed). */
export class BotIdentity extends DurableObject<BotEnv> implements BotIdentityRpc {
  #log: Logger;
  #loaded: Loaded | null = null;
  #loadError: unknown = null;

  /**
   * @param ctx the object's state
   * @param env the Worker's bindings
   */
  constructor(ctx: DurableObjectState, env: BotEnv) {
    super(ctx, env);
    this.#log = createLogger({
      component: "tbot",
      format: env.LOG_FORMAT === "json" ? "json" : "text",
      write: (line) => console.log(line),
    });
    // Nothing is delivered until the stored state is loaded (or known broken).
    ctx.blockConcurrencyWhile(async () => {
      try {
        this.#loaded = await this.#load();
      } catch (err) {
        this.#loadError = err;
        this.#log.error("cannot load the bot's state; nothing was changed", {
          error: (err as Error).message,
        });
      }
    });
  }

  /** Test seam: a subclass may replace the join and the clock (default: the real ones). */
  protected runnerSeams(): RunnerSeams {
    return {};
  }

  async #load(): Promise<Loaded> {
    const config = botConfig(this.env);
    const kek = this.env.TBOT_STORAGE_KEK
      ? await parseKek(this.env.TBOT_STORAGE_KEK, "the TBOT_STORAGE_KEK secret")
      : null;
    const files = new DoAgentStorage(this.ctx.storage);
    // The state is about a dozen files: one storage call reads them all (this
    // runs inside blockConcurrencyWhile, so nothing else touches them meanwhile).
    const release = await files.preload();
    try {
      return await this.#loadFrom(files, config, kek);
    } finally {
      release();
    }
  }

  async #loadFrom(files: DoAgentStorage, config: BotConfig, kek: Kek | null): Promise<Loaded> {
    const storage = new SealedStorage(files, {
      kek,
      context: `bot-object:${this.ctx.id.toString()}\u0000token:${config.tokenName}`,
      log: this.#log,
    });
    await replayJournal(storage);
    const clientState = await StoredClientState.load(storage, this.#log);
    const stored = await loadIdentity(storage, config.tokenName, this.#log);
    const seams = this.runnerSeams();
    const doFetch = this.#authFetch();
    const service = seams.identity ? null : new IdentityService({
      storage,
      clientState,
      tokenName: config.tokenName,
      credentialTtlMs: config.agent.credential_ttl,
      ...(config.agent.onboarding.bound_keypair.registration_secret
        ? { registrationSecret: config.agent.onboarding.bound_keypair.registration_secret }
        : {}),
      ...joinTransport(config.authServer, doFetch),
      clock: seams.clock ?? systemClock,
      log: this.#log,
    }, stored);
    // Evicted mid-join: resume at once instead of at the next scheduled renewal.
    if (await service?.hasPendingJoin()) await this.ctx.storage.setAlarm(Date.now());
    const identity = seams.identity ?? service!;
    const storageApi = this.ctx.storage;
    const runner = new BotRunner({
      identity,
      renewalInterval: config.agent.renewal_interval,
      log: this.#log,
      ...(seams.clock ? { clock: seams.clock } : {}),
      // The runner's wake-ups are the object's alarm, which survives eviction and restarts.
      timer: { arm: (at) => at ? storageApi.setAlarm(at.getTime()) : storageApi.deleteAlarm() },
      describeFailure: (err) =>
        describeJoinFailure(err, {
          tokenName: config.tokenName,
          server: config.authServer,
          staticKey: false,
        }),
    });
    return { config, runner };
  }

  /** The auth service's fetch: the service binding when there is one, else the internet. */
  #authFetch(): typeof fetch {
    // Wrapped either way: workerd rejects a global fetch called as another object's method.
    const binding = this.env.AUTH;
    return ((input, init) =>
      binding
        ? binding.fetch(input as Request | string | URL, init)
        : fetch(input, init)) as typeof fetch;
  }

  #ready(): Loaded {
    if (this.#loaded) return this.#loaded;
    throw this.#loadError ?? new KeyboundError("INTERNAL", "the bot's state is not loaded");
  }

  #context() {
    return {
      tokenName: this.#loaded?.config.tokenName ?? this.env.TBOT_TOKEN,
      server: this.#loaded?.config.authServer ?? this.env.AUTH_SERVER,
    };
  }

  /** The runner's wake-up: the first one after a restart renews, later ones run what is due. */
  async alarm(): Promise<void> {
    if (!this.#loaded) {
      this.#log.error("the alarm fired but the bot's state could not be loaded");
      return;
    }
    await this.#loaded.runner.start({ renewNow: true });
    await this.#loaded.runner.tick();
  }

  async start(): Promise<BotReadiness> {
    // /readyz is public and calls this: the runner starts once per activation, so
    // requests cannot turn into a stream of join attempts against the auth service.
    if (this.#loaded) {
      await this.#loaded.runner.start({ due: await this.#alarmAt() });
    }
    return await this.readiness();
  }

  async #alarmAt(): Promise<Date | null> {
    const alarm = await this.ctx.storage.getAlarm();
    return alarm === null ? null : new Date(alarm);
  }

  async renew(): Promise<RpcResult<{ generation: number; bot_instance_id: string }>> {
    try {
      const id = await this.#ready().runner.renew();
      return { ok: true, generation: id.generation, bot_instance_id: id.botInstanceId };
    } catch (err) {
      return { ok: false, error: joinError(err, this.#context()) };
    }
  }

  async jwtSvid(audience: string): Promise<RpcResult<{ svid: JwtSvid }>> {
    let identity: AgentIdentity;
    try {
      identity = await this.#ready().runner.validIdentity();
    } catch (err) {
      return { ok: false, error: joinError(err, this.#context()) };
    }
    try {
      const { config } = this.#ready();
      if (!config.workloadIdentity) {
        throw new KeyboundError("CONFIG_INVALID", "TBOT_WORKLOAD_IDENTITY is not set");
      }
      const workloadIdentity = config.workloadIdentity;
      const svid = await this.#ready().runner.retryIfKeyDropped(identity, (id) =>
        fetchJwtSvid({
          baseUrl: config.authServer,
          fetch: this.#authFetch(),
          signer: { certDer: id.certDer, privateKey: id.privateKey },
          workloadIdentity,
          audiences: [audience],
        }));
      return { ok: true, svid };
    } catch (err) {
      return { ok: false, error: callError("JWT-SVID request failed", err) };
    }
  }

  async x509(includePrivateKey = false): Promise<RpcResult<{ credentials: X509Credentials }>> {
    try {
      const identity = await this.#ready().runner.validIdentity();
      return {
        ok: true,
        credentials: {
          tls_cert: identity.tlsCertPem,
          tls_ca_certs: identity.tlsCaPems,
          ssh_cert: identity.sshCert,
          expires: identity.notAfter.toISOString(),
          ...(includePrivateKey ? { private_key: identity.keyPem } : {}),
        },
      };
    } catch (err) {
      return { ok: false, error: joinError(err, this.#context()) };
    }
  }

  async readiness(): Promise<BotReadiness> {
    const alarm = await this.#alarmAt();
    const next_renewal = alarm === null ? null : alarm.toISOString();
    if (!this.#loaded) {
      return {
        status: "unhealthy",
        reason: joinError(this.#loadError, this.#context()).message,
        next_renewal,
      };
    }
    const s = this.#loaded.runner.status();
    const identity = s.identity;
    return {
      status: s.status,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(identity
        ? {
          bot_name: identity.botName,
          bot_instance_id: identity.botInstanceId,
          generation: identity.generation,
          expires: identity.notAfter.toISOString(),
        }
        : {}),
      ...(s.lastRenewal ? { last_renewal: s.lastRenewal.toISOString() } : {}),
      next_renewal,
    };
  }
}
