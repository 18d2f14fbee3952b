/**
 * `tbot start`: read the configuration, take the storage lock, set up trust
 * in the auth service, and run the bot (daemon or oneshot) with diagnostics,
 * heartbeats and signal handling.
 *
 * @module
 */
import { runBot } from "../../agent/bot.ts";
import { createBotApi } from "../../agent/bot_api.ts";
import {
  type ClientState,
  StaticClientState,
  StoredClientState,
} from "../../agent/client_state.ts";
import { type Clock, systemClock } from "../../agent/clock.ts";
import {
  parseServerAddress,
  type StorageConfig,
  type TbotConfig,
} from "../../agent/config/schema.ts";
import { sendHeartbeat } from "../../agent/heartbeat.ts";
import { loadIdentity } from "../../agent/identity.ts";
import { certificateKeyAlgorithmFor, IdentityService } from "../../agent/identity_service.ts";
import { joinTransport } from "../../agent/join_client.ts";
import { replayJournal } from "../../agent/journal.ts";
import { errorText, untilReachable, Wakeup } from "../../agent/runner/mod.ts";
import { MemoryStorage } from "../../agent/memory_storage.ts";
import { TbotMetrics } from "../../agent/metrics.ts";
import { createOutputs } from "../../agent/outputs/mod.ts";
import { ReadinessRegistry } from "../../agent/readiness.ts";
import {
  ENV_STORAGE_KEK,
  ENV_STORAGE_KEK_PATH,
  loadKek,
  sealIfPersistent,
} from "../../agent/sealed_keys.ts";
import { traceFetch, traceStorage } from "../../agent/debug_trace.ts";
import type { AgentStorage, ReleaseLock } from "../../agent/storage.ts";
import { TBOT_VERSION } from "../../agent/version.ts";
import { ConfigError, inContext } from "../../errors.ts";
import { reportFailure } from "./failure.ts";
import { checkFileAccess, pathsOf } from "./file_access.ts";
import { withHeapRelease } from "./heap_release.ts";
import { flagsFromSources } from "./output_mode.ts";
import { formatDuration } from "../../util/duration.ts";
import { createLogger, type LogFormat, type Logger } from "../../util/log.ts";
import { logFormatOf } from "./log_format.ts";
import { resolveOnboarding } from "./onboarding.ts";
import { decidingEnv, type DecidingVariable } from "../env.ts";
import type { DiagServer, TbotPlatform, TrustSettings } from "./platform.ts";
import { applyStartFlags, configFromFlags, type StartFlags } from "./start_flags.ts";
import { trustFor } from "./trust_settings.ts";

export { logFormatOf } from "./log_format.ts";

/** Environment variable naming the config file, as in Teleport. */
export const ENV_CONFIG_PATH = "TBOT_CONFIG_PATH";
/** Environment variable holding the whole config, base64-encoded, as in Teleport. */
export const ENV_CONFIG = "TBOT_CONFIG";

/** Test seams of {@linkcode runStart}. */
export interface StartSeams {
  /** Time source (default: the system clock). */
  clock?: Clock;
  /** Stops the bot when aborted, in addition to signals. */
  signal?: AbortSignal;
}

/** The KEK's variables: outside a narrowed --allow-env, keys would rest unencrypted. */
const KEK_VARIABLES: DecidingVariable = {
  decides: "whether private keys are sealed",
  allow: [ENV_STORAGE_KEK, ENV_STORAGE_KEK_PATH],
  instead: "set storage.kek_path",
};

/** The configuration's variables, when no -c is given. */
const CONFIG_VARIABLES: DecidingVariable = {
  decides: "which configuration (auth server, CA pins) tbot trusts",
  allow: [ENV_CONFIG_PATH, ENV_CONFIG],
  instead: "pass -c FILE",
};

/** Reads the config file (if any) and applies the flags. */
export async function loadStartConfig(
  flags: StartFlags,
  platform: TbotPlatform,
  log: Logger,
): Promise<TbotConfig> {
  flags = await flagsFromSources(flags, platform, log);
  // Unreadable is never "unset": the other source (or flags alone) would be trusted instead.
  const path = flags.config ?? decidingEnv(platform, ENV_CONFIG_PATH, CONFIG_VARIABLES);
  const inline = path ? undefined : decidingEnv(platform, ENV_CONFIG, CONFIG_VARIABLES);
  if (!path && !inline) return configFromFlags(flags, log);
  if (path) {
    checkFileAccess([
      { path, access: "read", field: flags.config === undefined ? ENV_CONFIG_PATH : "-c" },
    ], platform);
  }
  // The YAML parser (a CommonJS package: ~30 ms and ~6 MB at start) only for a config file.
  const { parseConfig } = await import("../../agent/config/load.ts");
  const config = path
    ? parseConfig(await platform.readTextFile(path), path)
    : parseConfig(decodeBase64Config(inline!), ENV_CONFIG);
  return applyStartFlags(config, true, flags, log);
}

/** `TBOT_CONFIG`: the whole tbot.yaml, base64-encoded (as in Teleport). */
function decodeBase64Config(text: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(text.trim()), (ch) => ch.charCodeAt(0)),
    );
  } catch {
    throw new ConfigError(`${ENV_CONFIG}: must be the tbot.yaml encoded in base64`);
  }
}

/** How to trust the server, from the configuration. */
export function trustSettings(
  config: TbotConfig,
  storage: AgentStorage,
  log?: Logger,
): TrustSettings {
  return trustFor(
    {
      server: config.auth_server ?? config.proxy_server!,
      insecure: config.insecure,
      caPins: config.onboarding.ca_pins,
      caPath: config.onboarding.ca_path,
    },
    storage,
    log,
  );
}

/** Opens the configured storage; anything it must close at exit goes onto `cleanups`. */
async function openStorage(
  config: StorageConfig,
  platform: TbotPlatform,
  cleanups: (() => Promise<void> | void)[],
): Promise<AgentStorage> {
  switch (config.type) {
    case "memory":
      return new MemoryStorage();
    case "directory":
      return platform.openDirectory(config.path);
    case "deno_kv": {
      const kv = await platform.openKvStorage(config.path);
      cleanups.push(kv.close);
      return kv.storage;
    }
  }
}

async function openClientState(
  staticKeyPem: string | undefined,
  storage: AgentStorage,
  log: Logger,
  clock: Clock,
): Promise<ClientState> {
  if (staticKeyPem) {
    try {
      const state = await StaticClientState.fromPem(staticKeyPem);
      log.info("using a static bound key; it is never rotated and no join state is kept");
      return state;
    } catch (e) {
      log.warn("the static private key cannot be loaded; using the key in storage instead", {
        error: errorText(e),
      });
    }
  }
  return StoredClientState.load(storage, log, () => clock.now());
}

/**
 * Runs `tbot start`. Returns the process exit code: 0 after a clean stop or
 * a successful oneshot, 1 with one error line on stderr otherwise.
 */
export async function runStart(
  flags: StartFlags,
  platform: TbotPlatform,
  seams: StartSeams = {},
): Promise<number> {
  const makeLog = (format: LogFormat, debug: boolean) =>
    createLogger({ format, debug, component: "tbot", write: platform.stderr });
  // Text until --log-format is known to be valid, so even that error is reported.
  let log = makeLog("text", !!flags.debug);
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    log = makeLog(logFormatOf(flags.logFormat), !!flags.debug);
    const config = await loadStartConfig(flags, platform, log);
    // Before anything is read or written: a path outside a narrowed permission is a
    // configuration error, never a prompt or a bot stopped half-way.
    checkFileAccess(pathsOf(config, flags.pidFile, platform.env), platform);
    if (config.debug) log = makeLog(logFormatOf(flags.logFormat), true);
    if (!config.oneshot && config.credential_ttl < config.renewal_interval) {
      log.warn(
        "credential_ttl is shorter than renewal_interval: the certificates will expire between renewals",
        {
          credential_ttl: formatDuration(config.credential_ttl),
          renewal_interval: formatDuration(config.renewal_interval),
        },
      );
    }
    const clock = seams.clock ?? systemClock;
    const server = config.auth_server ?? config.proxy_server!;
    const baseUrl = parseServerAddress(server).baseUrl;
    log.info("tbot starting", {
      version: TBOT_VERSION,
      mode: config.oneshot ? "oneshot" : "daemon",
      server: baseUrl,
    });
    const onboarding = await resolveOnboarding(config, platform, log);

    // Debug traces the file names and sizes written, below sealing: never the content.
    const storage: AgentStorage = sealIfPersistent(
      traceStorage(await openStorage(config.storage, platform, cleanups), log),
      {
        kek: await loadKek({
          // Never "unset" when unreadable: keys would rest unencrypted. Memory is never sealed.
          env: config.storage.type === "memory"
            ? platform.env
            : (name) => decidingEnv(platform, name, KEK_VARIABLES),
          readTextFile: platform.readTextFile,
          kekPath: config.storage.type === "memory" ? undefined : config.storage.kek_path,
        }),
        context: `token:${onboarding.tokenName}`,
        log,
      },
    );
    await storage.init();
    const release: ReleaseLock = await storage.tryLock();
    cleanups.push(release);
    if (!storage.persistent) {
      log.warn(
        "storage is not persistent: the bound keypair is lost at exit and the next start needs a recovery",
      );
    }
    if (await replayJournal(storage)) {
      log.warn("finished writing the results of a join that was interrupted by a crash");
    }

    const trust = trustSettings(config, storage, log);
    if (trust.mode === "insecure" || trust.mode === "plain_http") {
      log.warn(
        "INSECURE: the auth service's identity is NOT verified (insecure: true); anyone on the " +
          "network path can impersonate it and take over this bot. Use onboarding.ca_pins instead.",
      );
    }
    // Installed before the first contact, which a daemon may wait on for long.
    const stop = new AbortController();
    seams.signal?.addEventListener("abort", () => stop.abort(), { once: true });
    const wakeup = new Wakeup();
    cleanups.push(platform.onSignals({
      stop: (sig) => {
        log.info("stopping", { signal: sig });
        stop.abort();
      },
      reload: (sig) => {
        if (!wakeup.fire()) log.warn("a renewal is already queued", { signal: sig });
        else log.info("renewing now", { signal: sig });
      },
    }));
    // A daemon waits for an auth service that is not up yet (learning the CA by pin connects).
    const reach = config.oneshot
      ? platform.createFetch(baseUrl, trust)
      : untilReachable(() => platform.createFetch(baseUrl, trust), {
        clock,
        random: Math.random,
        log,
        signal: stop.signal,
      });
    // Independent reads and key imports, overlapped.
    const [transport, clientState, stored] = await Promise.all([
      reach,
      openClientState(onboarding.staticKeyPem, storage, log, clock),
      loadIdentity(storage, onboarding.tokenName, log),
    ]);
    if (!transport) {
      log.info("stopped");
      return 0;
    }

    // Debug traces method, path, status and time of each request: never a body or header.
    const fetchFn = traceFetch(transport.fetch, log);
    const readiness = new ReadinessRegistry(() => clock.now());
    const metrics = new TbotMetrics(TBOT_VERSION);
    const identity = new IdentityService({
      storage,
      clientState,
      tokenName: onboarding.tokenName,
      credentialTtlMs: config.credential_ttl,
      registrationSecret: onboarding.registrationSecret,
      // A daemon gives its heap's free pages back after its joins (./heap_release.ts),
      // spaced by a monotonic clock: a wall clock stepped back an hour stopped
      // the releases for that hour (review2 N3).
      ...(config.oneshot
        ? joinTransport(baseUrl, fetchFn)
        : withHeapRelease(joinTransport(baseUrl, fetchFn), platform, () => performance.now())),
      clock,
      log,
      metrics,
      onHostCas: (pems) => transport.followHostCas(pems),
      certificateKeyAlgorithm: certificateKeyAlgorithmFor(config.services),
    }, stored);

    if (config.diag_addr) {
      // The diagnostics routes are loaded only when they are served.
      const { createDiagApp } = await import("../../agent/diag_app.ts");
      const diag: DiagServer = await platform.serve(
        config.diag_addr,
        createDiagApp(readiness, metrics).fetch,
      );
      cleanups.push(() => diag.close());
      log.info("diagnostics listening", { addr: diag.addr });
    }

    if (flags.pidFile) {
      const pidFile = flags.pidFile;
      try {
        await platform.writeTextFile(pidFile, `${platform.pid()}\n`, 0o644);
      } catch (cause) {
        // The platform's message already names the path and why: "cannot write FILE: …".
        throw inContext("--pid-file", cause, "STORAGE_ERROR");
      }
      cleanups.push(() => platform.removeFile(pidFile));
    }

    await runBot({
      config,
      identity,
      outputs: createOutputs(config.services, (d, o) => platform.openDirectory(d.path, o), {
        api: createBotApi({ baseUrl, fetch: fetchFn }),
        credentialTtlMs: config.credential_ttl,
        absolutePath: (p) => platform.absolutePath(p),
        hooks: { processes: platform.hookProcesses, log, metrics, clock },
        sharing: { files: platform.fileSharing, log },
      }),
      heartbeat: (id, body, signal) =>
        sendHeartbeat({ baseUrl, fetch: fetchFn, identity: id, body, signal }),
      host: platform.hostInfo(),
      clock,
      random: Math.random,
      log,
      readiness,
      metrics,
      signal: stop.signal,
      wakeup,
      server: baseUrl,
      tokenName: onboarding.tokenName,
      staticKey: clientState.isStatic,
    });
    log.info(config.oneshot ? "oneshot run complete" : "stopped");
    return 0;
  } catch (e) {
    return reportFailure(e, platform, log);
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn("cleanup failed", { error: errorText(e) });
      }
    }
  }
}
