/**
 * A bound-keypair bot in a browser page: its state and keys in IndexedDB
 * ({@linkcode IndexedDbAgentStorage}), joined and renewed by the shared bot
 * runner (`BotRunner`, woken by page timers) with the page's `fetch`. The
 * auth service must list the page's origin with `--web-origin` unless it
 * serves the page itself.
 *
 * @example
 * ```ts ignore
 * import { startBrowserBot } from "./bot.ts";
 * const bot = await startBrowserBot({
 *   authUrl: "https://auth.example.com:3025",
 *   tokenName: "kiosk-7",
 *   registrationSecret: new URLSearchParams(location.hash.slice(1)).get("secret") ?? undefined,
 * });
 * bot.status().status; // "healthy" once joined (or refreshed with the stored key)
 * ```
 *
 * @module
 */
import { StoredClientState } from "../../src/agent/client_state.ts";
import { systemClock } from "../../src/agent/clock.ts";
import { configFromObject } from "../../src/agent/config/validate.ts";
import { sendHeartbeat } from "../../src/agent/heartbeat.ts";
import { loadIdentity } from "../../src/agent/identity.ts";
import { IdentityService } from "../../src/agent/identity_service.ts";
import { joinTransport } from "../../src/agent/join_client.ts";
import { describeJoinFailure } from "../../src/agent/refusal.ts";
import { BotRunner, type IdentitySource, type RunnerStatus } from "../../src/agent/runner/mod.ts";
import { pruneKeyObjects } from "../../src/agent/stored_keys.ts";
import { TBOT_VERSION } from "../../src/agent/version.ts";
import { createLogger, type Logger } from "../../src/util/log.ts";
import { IndexedDbAgentStorage } from "./indexeddb_storage.ts";
import { browser } from "./web_types.ts";

/** Options of {@linkcode startBrowserBot}. */
export interface BrowserBotOptions {
  /** Auth service base URL, e.g. `https://auth.example.com:3025` (http:// only on loopback). */
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
  /** Health, reason of the last failure, and the current identity. */
  status(): RunnerStatus;
  /** Stops renewing and releases the storage lock. */
  stop(): Promise<void>;
}

/** The page's fetch, called unbound (a browser's fetch refuses another `this`). */
const pageFetch: typeof fetch = (input, init) => fetch(input, init);

/**
 * Opens the bot's storage, loads its keys and identity, and starts the
 * runner. Resolves after the first renewal: a first join (with the
 * registration secret) or a refresh with the stored key. Throws when that
 * fails and no identity is stored; with a stored identity the runner keeps
 * retrying and {@linkcode BrowserBot.status} says why it is unhealthy.
 */
export async function startBrowserBot(o: BrowserBotOptions): Promise<BrowserBot> {
  const log = o.log ?? createLogger({ component: "browser-bot", write: (l) => console.log(l) });
  const storage = o.storage ?? new IndexedDbAgentStorage();
  const baseUrl = o.authUrl.replace(/\/+$/, "");
  // The same schema, defaults and rules as a tbot.yaml (http:// only on loopback).
  const config = configFromObject({
    version: "v2",
    auth_server: baseUrl,
    insecure: /^http:\/\//i.test(baseUrl),
    onboarding: { join_method: "bound_keypair", token: o.tokenName },
    storage: { type: "memory" },
    credential_ttl: o.credentialTtl ?? "1h",
    renewal_interval: o.renewalInterval ?? "20m",
  }, (path) => `browser bot option ${path.join(".")}`);
  await storage.init();
  const release = await storage.tryLock();
  try {
    const [clientState, stored] = await Promise.all([
      StoredClientState.load(storage, log),
      loadIdentity(storage, o.tokenName, log),
    ]);
    const service = new IdentityService({
      storage,
      clientState,
      tokenName: o.tokenName,
      credentialTtlMs: config.credential_ttl,
      registrationSecret: o.registrationSecret,
      ...joinTransport(baseUrl, pageFetch),
      clock: systemClock,
      log,
    }, stored);
    // After each renewal no join is in flight (the runner's joins are
    // single-flight, the lock keeps other tabs out): the key objects of
    // past certificates can go.
    const identity: IdentitySource = {
      get identity() {
        return service.identity;
      },
      hasValidIdentity: () => service.hasValidIdentity(),
      async renew() {
        const renewed = await service.renew();
        await pruneKeyObjects(storage).catch((e) =>
          log.warn("cannot delete unused key objects", { error: (e as Error).message })
        );
        return renewed;
      },
    };
    const runner = new BotRunner({
      identity,
      renewalInterval: config.renewal_interval,
      log,
      heartbeat: {
        send: (id, body, signal) =>
          sendHeartbeat({ baseUrl, fetch: pageFetch, identity: id, body, signal }),
        host: {
          version: TBOT_VERSION,
          hostname: location.host,
          os: "browser",
          architecture: browser().navigator.userAgent.slice(0, 64),
        },
      },
      describeFailure: (err) =>
        describeJoinFailure(err, { tokenName: o.tokenName, server: baseUrl, staticKey: false }),
    });
    await runner.start({ renewNow: true, requireIdentity: true });
    return {
      storage,
      status: () => runner.status(),
      async stop() {
        await runner.stop();
        await release();
      },
    };
  } catch (e) {
    await release();
    throw e;
  }
}
