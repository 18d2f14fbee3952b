/**
 * How tbot on Deno reaches the auth service under each trust mode: system
 * roots, a CA file, CA pins, or nothing at all (`insecure`). I/O only: the
 * pin policy is `src/agent/trust/`.
 *
 * Pins: Deno's `fetch` cannot skip verification for one request, so the
 * first contact goes through `node:tls` with verification off, in a child
 * process ({@linkcode fetchUnverified}); after the policy has accepted a CA, every
 * request verifies against the saved host CAs only (./exclusive_trust.ts),
 * as with a CA file. Only the system-roots mode lets Deno's root store vouch
 * for the server too.
 *
 * @module
 */
import {
  checkCaFile,
  type FirstContactResult,
  HOST_CA_PATH,
  HostTrust,
  parseHttpResponse,
  pinnedHostCas,
  readHostCas,
  trustsRuntimeRoots,
} from "../../src/agent/trust/mod.ts";
import type { AuthTransport, TrustSettings } from "../../src/cli/tbot/platform.ts";
import {
  claimEmptyDefaultRoots,
  CLIENT_POOL_IDLE_MS,
  fetchTrustingOnly,
} from "./exclusive_trust.ts";
import {
  classifyingFetchFailures,
  FailedBeforeRequest,
  resetBeforeSend,
  resetBeforeSendError,
} from "./fetch_errors.ts";
import { nodeHttpsFetcher } from "./node_https_fetch.ts";
import { type Logger, silentLogger } from "../../src/util/log.ts";
import * as z from "zod";
import { KeyboundError } from "../../src/errors.ts";
import { concatBytes, fromBase64 } from "../../src/util/encoding.ts";
import { denoCliPath } from "./deno_cli.ts";
import { granted, readEnv } from "./permissions.ts";
import {
  PROBE_TIMEOUT_MS,
  type ProbeOutcome,
  probeTarget,
  probeUnverified,
} from "./first_contact_probe.ts";

/**
 * The probe's program, run by `deno run`: beside this module in the sources,
 * and beside the bundle's chunks in dist/ (`deno task tbot-bundle` copies it).
 */
const PROBE = new URL("./first_contact_probe.ts", import.meta.url);
/** How long the probe's process may take on top of its own time limit: Deno's start-up. */
const PROBE_START_MS = 10_000;
/**
 * The only variables the probe's process gets: where Deno keeps its cache
 * (and the home or profile directory it finds it from), the temporary
 * directory and the search path. Not the daemon's whole environment: proxy,
 * `DENO_*` or `LD_*` settings would change how the unverified connection is
 * made, and the probe reads no variable itself (it has no env permission).
 */
const PROBE_ENV = [
  "DENO_DIR",
  "HOME",
  "XDG_CACHE_HOME",
  "PATH",
  "TMPDIR",
  "USERPROFILE",
  "LOCALAPPDATA",
  "SYSTEMROOT",
];

/**
 * The most read of the probe's standard output, bytes. The longest line a
 * probe within its own limits prints is a leaf of `PROBE_MAX_LEAF_BYTES` and
 * an answer of `PROBE_MAX_BYTES`, both in base64 (4/3), with the JSON around
 * them: 436,936 bytes (a failure line is a socket error's message, far
 * shorter). 512 KiB leaves 20 % over that; a real host CA answer is a few KiB.
 */
export const PROBE_STDOUT_MAX_BYTES = 512 * 1024;
/**
 * The most read of the probe's standard error, bytes: Deno writes an uncaught
 * error's stack there (~1 KiB) and the probe nothing else.
 */
export const PROBE_STDERR_MAX_BYTES = 64 * 1024;

/**
 * Reads `stream` to its end, or until more than `max` bytes came, then calls
 * `over` (which ends the writer) and stops reading.
 */
async function readAtMost(
  stream: ReadableStream<Uint8Array>,
  max: number,
  over: () => void,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Leaving the loop early cancels the stream: the pipe is closed, not drained.
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) {
      over();
      break;
    }
    chunks.push(chunk);
  }
  return concatBytes(...chunks);
}

/** What the probe printed: checked here, as anything read from another process. */
const probeOutcome = z.union([
  z.strictObject({ leaf: z.string(), answer: z.string() }),
  z.strictObject({
    failure: z.enum(["error", "ended", "no_certificate", "too_large", "timeout"]),
    message: z.string().optional(),
    sent: z.boolean(),
  }),
]);
// The probe runs without the project's configuration, so it cannot import zod: its
// type is stated there, and this pins the two together (either drifting fails the check).
const _sameOutcome: [ProbeOutcome, z.infer<typeof probeOutcome>] extends
  [z.infer<typeof probeOutcome>, ProbeOutcome] ? true : never = true;

/**
 * `deno run`'s network permission for the probe: the auth service's host and
 * port only, the port written out even when the URL leaves it implicit (a
 * bare host would allow every port). `hostname` keeps an IPv6 address's
 * brackets, as `--allow-net` wants them.
 */
export function probeNetPermission(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `--allow-net=${url.hostname}:${probeTarget(url).port}`;
}

/** Reads what the probe printed; anything but one {@linkcode ProbeOutcome} is a failure. */
export function parseProbeOutput(stdout: string): ProbeOutcome | undefined {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  const parsed = probeOutcome.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The variables of {@linkcode PROBE_ENV} this process has and may read; one
 * outside a narrowed --allow-env is left out (Deno does without it).
 */
function probeEnv(): Record<string, string> {
  const env: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };
  for (const name of PROBE_ENV) {
    const value = readEnv(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** How the first contact is made; the defaults are tbot's, the options are for tests. */
export interface FirstContactOptions {
  /**
   * The `deno` executable that runs the probe; `null` for this process (a
   * compiled tbot, which has no `deno` to run it with). Default: ./deno_cli.ts.
   */
  deno?: string | null;
  /** The probe's program. Default: ./first_contact_probe.ts. */
  probe?: URL;
  /** Where the fallback to this process is said (once). */
  log?: Logger;
}

/**
 * The first contact of the pin policy: the server's leaf certificate (DER)
 * and the answer to `GET /v1/ca/host`, over a connection that is NOT
 * verified (./first_contact_probe.ts, in a process of its own). Every call
 * of the returned function is one first contact.
 */
export function firstContactVia(
  options: FirstContactOptions = {},
): (baseUrl: string) => Promise<FirstContactResult> {
  const probe = options.probe ?? PROBE;
  let inProcess = false;

  /**
   * Runs the probe: in a `deno run` child process allowed to reach only the
   * auth service, so this process never loads `node:tls`; in this process
   * when there is no `deno` to run it with, or the child cannot be started
   * (from then on, without trying again).
   */
  async function runProbe(baseUrl: string, request: string): Promise<ProbeOutcome> {
    const deno = options.deno === undefined ? denoCliPath() : options.deno ?? undefined;
    if (!deno || inProcess) return await probeUnverified(baseUrl, request);
    const inThisProcess = async (why: string) => {
      inProcess = true;
      (options.log ?? silentLogger).info(
        "the CA pin's first contact runs in this process: it could not start deno",
        { deno, error: why },
      );
      return await probeUnverified(baseUrl, request);
    };
    // Asked first: starting a program outside a narrowed --allow-run prompts on a terminal.
    if (!granted({ name: "run", command: deno })) {
      return await inThisProcess("its --allow-run does not name deno");
    }
    const fail = (message: string, cause?: unknown) =>
      connectionFailed(baseUrl, `the first-contact probe failed: ${message}`, cause);
    const limit = AbortSignal.timeout(PROBE_TIMEOUT_MS + PROBE_START_MS);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(deno, {
        args: [
          "run",
          "--no-config",
          "--no-remote",
          "--no-npm",
          "--no-prompt",
          probeNetPermission(baseUrl),
          probe.href,
          baseUrl,
          request,
        ],
        // No cwd of its own: a relative DENO_DIR must name the cache it names here,
        // not a directory beside the probe (which would change a bundle's files).
        clearEnv: true,
        env: probeEnv(),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: limit,
      }).spawn();
    } catch (err) {
      // Only starting the child can throw here (the time limit ends it with a signal),
      // before anything is sent, so nothing a server does leads here. A narrowed
      // --allow-run, an executable this user may not run, or one replaced since this
      // process started (an upgrade in place: execPath() is then "<path> (deleted)"):
      // a setup that costs this process node:tls's memory, not a network failure.
      return await inThisProcess((err as Error).message);
    }
    // Read up to a bound each: a child that writes more is killed, not buffered.
    let overflow: "stdout" | "stderr" | undefined;
    const over = (stream: "stdout" | "stderr") => () => {
      overflow ??= stream;
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    };
    const [outBytes, errBytes, status] = await Promise.all([
      readAtMost(child.stdout, PROBE_STDOUT_MAX_BYTES, over("stdout")),
      readAtMost(child.stderr, PROBE_STDERR_MAX_BYTES, over("stderr")),
      child.status,
    ]);
    if (overflow) {
      const bound = overflow === "stdout" ? PROBE_STDOUT_MAX_BYTES : PROBE_STDERR_MAX_BYTES;
      throw new KeyboundError(
        "CONNECTION_FAILED",
        `${baseUrl}: the first-contact probe failed: it wrote more than ${bound} bytes to ` +
          `its standard ${overflow === "stdout" ? "output" : "error"} and was killed`,
        { details: { probe_output_too_large: overflow, limit_bytes: bound } },
      );
    }
    const stdout = new TextDecoder().decode(outBytes).trim();
    if (!status.success || !stdout) {
      const stderr = new TextDecoder().decode(errBytes).trim().split("\n");
      const ended = status.signal
        ? `${
          limit.aborted ? `killed after ${(PROBE_TIMEOUT_MS + PROBE_START_MS) / 1000} s ` : ""
        }` +
          `(${status.signal})`
        : `exit ${status.code}`;
      throw fail(stderr.find((l) => /error/i.test(l)) || stderr.at(-1) || ended);
    }
    const outcome = parseProbeOutput(stdout);
    if (!outcome) throw fail(`it printed no result (${stdout.slice(0, 80)})`);
    return outcome;
  }

  return async (baseUrl) => {
    const url = new URL(baseUrl);
    const outcome = await runProbe(
      baseUrl,
      `GET ${HOST_CA_PATH} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: application/json\r\n` +
        `Connection: close\r\n\r\n`,
    );
    const fail = (message: string, cause?: unknown) => connectionFailed(baseUrl, message, cause);
    if ("leaf" in outcome) {
      try {
        return {
          leafDer: fromBase64(outcome.leaf),
          ...parseHttpResponse(fromBase64(outcome.answer)),
        };
      } catch (err) {
        throw fail((err as Error).message, err);
      }
    }
    switch (outcome.failure) {
      case "timeout":
        throw fail("no answer in time while learning the host CA");
      case "no_certificate":
        throw fail("the server presented no TLS certificate");
      case "too_large":
        throw fail("the answer is too large");
      case "ended":
        // Closed during the handshake: the request was not sent, and may be sent again.
        throw resetBeforeSend(url.host, new Error("the TLS handshake did not complete"));
      case "error": {
        const err = new Error(outcome.message);
        // Before the request was written, a reset is one the caller may send again after
        // (src/agent/trust/).
        const reset = outcome.sent
          ? undefined
          : resetBeforeSendError(new FailedBeforeRequest(err), url.host);
        throw reset ?? fail(`cannot connect: ${err.message}`, err);
      }
      default:
        throw fail(`the first-contact probe printed no known result`);
    }
  };
}

/** tbot's first contact: {@linkcode firstContactVia} with its defaults. */
export const fetchUnverified: (baseUrl: string) => Promise<FirstContactResult> = firstContactVia();

/** A fetch that verifies the server against `caPems` and Deno's default root store. */
function fetchTrustingAlsoRoots(caPems: string[]): typeof fetch {
  if (caPems.length === 0) return fetch;
  const client = Deno.createHttpClient({ caCerts: caPems, poolIdleTimeout: CLIENT_POOL_IDLE_MS });
  return ((input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, client })) as typeof fetch;
}

/** `CONNECTION_FAILED` for the first contact with `baseUrl`. */
function connectionFailed(baseUrl: string, message: string, cause?: unknown): KeyboundError {
  return new KeyboundError(
    "CONNECTION_FAILED",
    `${baseUrl}: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Builds the transport to `baseUrl` under `trust`; a certificate that does
 * not verify fails with `TLS_UNTRUSTED`. With storage, the transport follows
 * the host CAs saved there (src/agent/trust/host_trust.ts).
 */
export async function createTrustedFetch(
  baseUrl: string,
  trust: TrustSettings,
  readTextFile: (path: string) => Promise<string>,
): Promise<AuthTransport> {
  const fixed = (f: typeof fetch): AuthTransport => ({
    fetch: classifyingFetchFailures(f),
    followHostCas: () => {},
  });
  switch (trust.mode) {
    case "plain_http":
      return fixed(fetch);
    case "insecure":
      return fixed((await nodeHttpsFetcher())({ insecure: true }));
    case "system":
    case "ca_path":
    case "pins": {
      // Before any TLS connection of this process (the pin's first contact included):
      // the cheap exclusive transport needs to be the first to build Deno's root store.
      let fetchTrusting = fetchTrustingAlsoRoots;
      if (!trustsRuntimeRoots(trust.mode)) {
        fetchTrusting = await fetchTrustingOnly();
        (trust.log ?? silentLogger).debug("the auth service is verified against its CAs only", {
          transport: await claimEmptyDefaultRoots() ? "deno" : "node:https",
        });
      }
      let configured: string[] = [];
      if (trust.mode === "ca_path") {
        const pem = await readTextFile(trust.path);
        checkCaFile(pem, trust.path);
        configured = [pem];
      }
      if (!trust.storage) return fixed(fetchTrusting(configured));
      const firstContact = firstContactVia({ log: trust.log });
      const saved = trust.mode === "pins"
        ? await pinnedHostCas(baseUrl, trust.pins, trust.storage, firstContact)
        : await readHostCas(trust.storage);
      const hostTrust = new HostTrust({
        baseUrl,
        storage: trust.storage,
        configured,
        saved,
        fetchTrusting: (pems) => classifyingFetchFailures(fetchTrusting(pems)),
        // Only trust by pin heals by cross-signature: a CA file or the system roots are the
        // operator's anchor, and the operator moves it.
        ...(trust.mode === "pins" ? { firstContact } : {}),
        now: () => new Date(),
        log: trust.log ?? silentLogger,
      });
      return { fetch: hostTrust.fetch, followHostCas: (pems) => hostTrust.update(pems) };
    }
  }
}
