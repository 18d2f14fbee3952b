/**
 * A bound-keypair bot in a browser page: its state and keys in IndexedDB
 * ({@linkcode IndexedDbAgentStorage}), joined and renewed by the shared agent
 * runner (`runBot`, the loop tbot runs) with the page's `fetch`. The auth
 * service must list the page's origin with `--web-origin` unless it serves
 * the page itself.
 *
 * @example
 * ```ts ignore
 * import { startBrowserBot } from "./bot.ts";
 * const bot = await startBrowserBot({
 *   authUrl: "https://auth.example.com:3025",
 *   tokenName: "kiosk-7",
 *   registrationSecret: new URLSearchParams(location.hash.slice(1)).get("secret") ?? undefined,
 * });
 * await bot.ready; // joined (or refreshed with the stored key)
 * ```
 *
 * @module
 */
import { runBot } from "../../src/agent/bot.ts";
import { StoredClientState } from "../../src/agent/client_state.ts";
import { systemClock } from "../../src/agent/clock.ts";
import { parseConfig } from "../../src/agent/config/load.ts";
import { sendHeartbeat } from "../../src/agent/heartbeat.ts";
import { type BotIdentity, loadIdentity } from "../../src/agent/identity.ts";
import { IdentityService } from "../../src/agent/identity_service.ts";
import { joinTransport } from "../../src/agent/join_client.ts";
import { Wakeup } from "../../src/agent/runner/mod.ts";
import { TbotMetrics } from "../../src/agent/metrics.ts";
import { ReadinessRegistry } from "../../src/agent/readiness.ts";
import type { AgentStorage } from "../../src/agent/storage.ts";
import { pruneKeyObjects } from "../../src/agent/stored_keys.ts";
import { TBOT_VERSION } from "../../src/agent/version.ts";
import { createLogger, type Logger } from "../../src/util/log.ts";
import { IndexedDbAgentStorage } from "./indexeddb_storage.ts";
import { browser } from "./web_types.ts";

/** Options of {@linkcode startBrowserBot}. */
export interface BrowserBotOptions {
  /** Auth service base URL, e.g. `https://auth.example.com:3025`. */
  authUrl: string;
  /** The bound_keypair join token's name. */
  tokenName: string;
  /** Registration secret for the first join; unused once the bot has joined. */
  registrationSecret?: string;
  /** Certificate lifetime (default 1h). */
  credentialTtl?: string;
  /** Renewal interval (default 20m). */
  renewalInterval?: string;
  /** Where state and keys live (default: IndexedDB database "keybound-bot"). */
  storage?: IndexedDbAgentStorage;
  /** Logger (default: lines on the console). */
  log?: Logger;
}

/** A running browser bot. */
export interface BrowserBot {
  /** The bot's storage. */
  storage: IndexedDbAgentStorage;
  /** The current identity (null before the first join). */
  identity(): BotIdentity | null;
  /** Resolves after the first successful join or refresh; rejects if the first one fails. */
  ready: Promise<BotIdentity>;
  /** Stops renewing and releases the storage lock. */
  stop(): Promise<void>;
}

/**
 * An identity service that, after each renewal, deletes the key objects no
 * stored file names any more (each renewal makes a new certificate key) and
 * reports the identity (the runner renews first thing).
 */
class ReportingIdentityService extends IdentityService {
  #report: (identity: BotIdentity) => void;
  #storage: AgentStorage;
  #log: Logger;

  constructor(
    options: ConstructorParameters<typeof IdentityService>[0],
    stored: BotIdentity | null,
    report: (identity: BotIdentity) => void,
  ) {
    super(options, stored);
    this.#report = report;
    this.#storage = options.storage;
    this.#log = options.log;
  }

  override async renew(): Promise<BotIdentity> {
    const identity = await super.renew();
    await pruneKeyObjects(this.#storage).catch((e) =>
      this.#log.warn("cannot delete unused key objects", { error: (e as Error).message })
    );
    this.#report(identity);
    return identity;
  }
}

/** The page's fetch, called unbound (a browser's fetch refuses another `this`). */
const pageFetch: typeof fetch = (input, init) => fetch(input, init);

/** Opens the bot's storage, loads its keys and identity, and starts the runner. */
export async function startBrowserBot(o: BrowserBotOptions): Promise<BrowserBot> {
  const log = o.log ?? createLogger({ component: "browser-bot", write: (l) => console.log(l) });
  const storage = o.storage ?? new IndexedDbAgentStorage();
  const baseUrl = o.authUrl.replace(/\/+$/, "");
  // Validated like a tbot.yaml: the same schema, durations and messages.
  const config = parseConfig(
    JSON.stringify({
      version: "v2",
      auth_server: new URL(baseUrl).host,
      onboarding: { join_method: "bound_keypair", token: o.tokenName },
      storage: { type: "memory" },
      credential_ttl: o.credentialTtl ?? "1h",
      renewal_interval: o.renewalInterval ?? "20m",
    }),
    "browser bot options",
  );
  await storage.init();
  const release = await storage.tryLock();
  const stopper = new AbortController();
  try {
    const [clientState, stored] = await Promise.all([
      StoredClientState.load(storage, log),
      loadIdentity(storage, o.tokenName, log),
    ]);
    const ready = Promise.withResolvers<BotIdentity>();
    const identity = new ReportingIdentityService(
      {
        storage,
        clientState,
        tokenName: o.tokenName,
        credentialTtlMs: config.credential_ttl,
        registrationSecret: o.registrationSecret,
        ...joinTransport(baseUrl, pageFetch),
        clock: systemClock,
        log,
      },
      stored,
      ready.resolve,
    );
    const readiness = new ReadinessRegistry(() => systemClock.now());
    const running = runBot({
      config,
      identity,
      outputs: [],
      heartbeat: (id, body, signal) =>
        sendHeartbeat({ baseUrl, fetch: pageFetch, identity: id, body, signal }),
      host: {
        version: TBOT_VERSION,
        hostname: location.host,
        os: "browser",
        architecture: browser().navigator.userAgent.slice(0, 64),
      },
      clock: systemClock,
      random: Math.random,
      log,
      readiness,
      metrics: new TbotMetrics(TBOT_VERSION),
      signal: stopper.signal,
      wakeup: new Wakeup(),
      server: baseUrl,
      tokenName: o.tokenName,
      staticKey: false,
    });
    running.catch((e) => ready.reject(e));
    return {
      storage,
      identity: () => identity.identity,
      ready: ready.promise,
      async stop() {
        stopper.abort();
        await running.catch(() => {});
        await release();
      },
    };
  } catch (e) {
    await release();
    throw e;
  }
}
