/**
 * `BotIdentity`: a tbot that lives in a Durable Object. It joins the auth
 * service with `fetch` (bound-keypair joining, like tbot), keeps its bound
 * key, join state and credentials in the object's storage (sealed under
 * `TBOT_STORAGE_KEK` when set), renews from the object's alarm, and answers
 * RPC calls for a JWT-SVID, its X.509 identity and its readiness.
 *
 * It reuses the agent core unchanged (StoredClientState, IdentityService,
 * the journal) over {@linkcode DoAgentStorage}. Joins are single-flight: an
 * alarm and a request arriving together share one join, so the server never
 * sees two joins of this bot at once.
 *
 * @module
 */
import { StoredClientState } from "../../src/agent/client_state.ts";
import { systemClock } from "../../src/agent/clock.ts";
import { type BotIdentity as AgentIdentity, loadIdentity } from "../../src/agent/identity.ts";
import { IdentityService } from "../../src/agent/identity_service.ts";
import { joinTransport } from "../../src/agent/join_client.ts";
import { replayJournal } from "../../src/agent/journal.ts";
import { describeJoinFailure } from "../../src/agent/refusal.ts";
import { parseKek, SealedStorage } from "../../src/agent/sealed_keys.ts";
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

/** Longest wait before retrying a failed renewal. */
const MAX_RETRY_MS = 5 * 60_000;
/** First retry delay after a failed renewal. */
const FIRST_RETRY_MS = 2_000;

interface Loaded {
  config: BotConfig;
  service: IdentityService;
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
  #renewing: Promise<AgentIdentity> | null = null;
  #lastError: RpcError | null = null;
  #lastRenewal: Date | null = null;
  #failures = 0;

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

  async #load(): Promise<Loaded> {
    const config = botConfig(this.env);
    const kek = this.env.TBOT_STORAGE_KEK
      ? await parseKek(this.env.TBOT_STORAGE_KEK, "the TBOT_STORAGE_KEK secret")
      : null;
    const storage = new SealedStorage(new DoAgentStorage(this.ctx.storage), {
      kek,
      context: `bot-object:${this.ctx.id.toString()}\u0000token:${config.tokenName}`,
      log: this.#log,
    });
    await replayJournal(storage);
    const clientState = await StoredClientState.load(storage, this.#log);
    const identity = await loadIdentity(storage, config.tokenName, this.#log);
    const doFetch = this.#authFetch();
    const service = new IdentityService({
      storage,
      clientState,
      tokenName: config.tokenName,
      credentialTtlMs: config.credentialTtlMs,
      ...(config.registrationSecret ? { registrationSecret: config.registrationSecret } : {}),
      ...joinTransport(config.authServer, doFetch),
      clock: systemClock,
      log: this.#log,
    }, identity);
    // Evicted mid-join: resume at once instead of at the next scheduled renewal.
    if (await service.hasPendingJoin()) await this.ctx.storage.setAlarm(Date.now());
    return { config, service };
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

  /** One join at a time: concurrent callers share the join in progress. */
  #renewOnce(): Promise<AgentIdentity> {
    if (this.#renewing) return this.#renewing;
    const { service } = this.#ready();
    this.#renewing = (async () => {
      try {
        const identity = await service.renew();
        this.#lastRenewal = new Date();
        this.#lastError = null;
        this.#failures = 0;
        return identity;
      } catch (err) {
        this.#failures++;
        this.#lastError = joinError(err, this.#context());
        this.#log.error(this.#lastError.message);
        throw err;
      } finally {
        this.#renewing = null;
      }
    })();
    return this.#renewing;
  }

  /** A valid identity: the stored one, or a fresh join. */
  async #validIdentity(): Promise<AgentIdentity> {
    const { service } = this.#ready();
    return service.hasValidIdentity() && service.identity
      ? service.identity
      : await this.#renewOnce();
  }

  async #armAlarm(delayMs: number): Promise<void> {
    await this.ctx.storage.setAlarm(Date.now() + delayMs);
  }

  #retryDelay(): number {
    const interval = this.#loaded?.config.renewalIntervalMs ?? MAX_RETRY_MS;
    return Math.min(interval, MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, this.#failures - 1));
  }

  /** Renews on schedule; the next alarm is armed whatever happens. */
  async alarm(): Promise<void> {
    let ok = false;
    try {
      await this.#renewOnce();
      ok = true;
    } catch {
      // Recorded in #lastError and logged; the finally block schedules a retry.
    } finally {
      const interval = this.#loaded?.config.renewalIntervalMs;
      await this.#armAlarm(ok && interval ? interval : this.#retryDelay());
    }
  }

  async start(): Promise<BotReadiness> {
    // /readyz is public and calls this: after a failure only the alarm retries, so
    // requests cannot turn into a stream of join attempts against the auth service.
    if (!this.#lastError) {
      try {
        await this.#validIdentity();
      } catch {
        // Recorded in #lastError and reported by readiness.
      }
    }
    if (this.#loaded && (await this.ctx.storage.getAlarm()) === null) {
      const interval = this.#loaded.config.renewalIntervalMs;
      await this.#armAlarm(this.#lastError ? this.#retryDelay() : interval);
    }
    return await this.readiness();
  }

  async renew(): Promise<RpcResult<{ generation: number; bot_instance_id: string }>> {
    try {
      const id = await this.#renewOnce();
      return { ok: true, generation: id.generation, bot_instance_id: id.botInstanceId };
    } catch (err) {
      return { ok: false, error: joinError(err, this.#context()) };
    }
  }

  async jwtSvid(audience: string): Promise<RpcResult<{ svid: JwtSvid }>> {
    let identity: AgentIdentity;
    try {
      identity = await this.#validIdentity();
    } catch (err) {
      return { ok: false, error: joinError(err, this.#context()) };
    }
    try {
      const { config } = this.#ready();
      if (!config.workloadIdentity) {
        throw new KeyboundError("CONFIG_INVALID", "TBOT_WORKLOAD_IDENTITY is not set");
      }
      const svid = await fetchJwtSvid({
        baseUrl: config.authServer,
        fetch: this.#authFetch(),
        signer: { certDer: identity.certDer, privateKey: identity.privateKey },
        workloadIdentity: config.workloadIdentity,
        audiences: [audience],
      });
      return { ok: true, svid };
    } catch (err) {
      return { ok: false, error: callError("JWT-SVID request failed", err) };
    }
  }

  async x509(includePrivateKey = false): Promise<RpcResult<{ credentials: X509Credentials }>> {
    try {
      const identity = await this.#validIdentity();
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
    const alarm = await this.ctx.storage.getAlarm();
    const next_renewal = alarm === null ? null : new Date(alarm).toISOString();
    if (!this.#loaded) {
      return {
        status: "unhealthy",
        reason: joinError(this.#loadError, this.#context()).message,
        next_renewal,
      };
    }
    const identity = this.#loaded.service.identity;
    const valid = this.#loaded.service.hasValidIdentity();
    return {
      status: this.#lastError || (identity && !valid)
        ? "unhealthy"
        : identity
        ? "healthy"
        : "initializing",
      ...(this.#lastError
        ? { reason: this.#lastError.message }
        : identity && !valid
        ? { reason: "the bot's certificate has expired" }
        : {}),
      ...(identity
        ? {
          bot_name: identity.botName,
          bot_instance_id: identity.botInstanceId,
          generation: identity.generation,
          expires: identity.notAfter.toISOString(),
        }
        : {}),
      ...(this.#lastRenewal ? { last_renewal: this.#lastRenewal.toISOString() } : {}),
      next_renewal,
    };
  }
}
