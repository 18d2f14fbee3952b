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
import { silentLogger } from "../../src/util/log.ts";
import { KeyboundError } from "../../src/errors.ts";
import { fromBase64 } from "../../src/util/encoding.ts";
import { denoCliPath } from "./deno_cli.ts";
import { PROBE_TIMEOUT_MS, type ProbeOutcome, probeUnverified } from "./first_contact_probe.ts";

/**
 * The probe's program, run by `deno run`: beside this module in the sources,
 * and beside the bundle's chunks in dist/ (`deno task tbot-bundle` copies it).
 */
const PROBE = new URL("./first_contact_probe.ts", import.meta.url);
/** How long the probe's process may take on top of its own time limit: Deno's start-up. */
const PROBE_START_MS = 10_000;

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
 * Runs ./first_contact_probe.ts: in a `deno run` child process allowed to
 * reach only the auth service, so this process never loads `node:tls`; in
 * a compiled tbot (no `deno` to run it with) in this process.
 */
async function runProbe(baseUrl: string, request: string): Promise<ProbeOutcome> {
  const deno = denoCliPath();
  if (!deno) return await probeUnverified(baseUrl, request);
  const fail = (message: string, cause?: unknown) =>
    connectionFailed(baseUrl, `the first-contact probe failed: ${message}`, cause);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(deno, {
      args: [
        "run",
        "--no-config",
        "--no-prompt",
        `--allow-net=${new URL(baseUrl).host}`,
        PROBE.href,
        baseUrl,
        request,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS + PROBE_START_MS),
    }).output();
  } catch (err) {
    throw fail((err as Error).message, err);
  }
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !stdout) {
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n");
    throw fail(stderr.find((l) => /error/i.test(l)) ?? stderr.at(-1) ?? `exit ${out.code}`);
  }
  try {
    return JSON.parse(stdout) as ProbeOutcome;
  } catch (err) {
    throw fail(`it printed no result (${stdout.slice(0, 80)})`, err);
  }
}

/**
 * The first contact of the pin policy: the server's leaf certificate (DER)
 * and the answer to `GET /v1/ca/host`, over a connection that is NOT
 * verified (./first_contact_probe.ts, in a process of its own).
 */
export async function fetchUnverified(baseUrl: string): Promise<FirstContactResult> {
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
  }
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
      const saved = trust.mode === "pins"
        ? await pinnedHostCas(baseUrl, trust.pins, trust.storage, fetchUnverified)
        : await readHostCas(trust.storage);
      const hostTrust = new HostTrust({
        baseUrl,
        storage: trust.storage,
        configured,
        saved,
        fetchTrusting: (pems) => classifyingFetchFailures(fetchTrusting(pems)),
        // Only trust by pin heals by cross-signature: a CA file or the system roots are the
        // operator's anchor, and the operator moves it.
        ...(trust.mode === "pins" ? { firstContact: fetchUnverified } : {}),
        now: () => new Date(),
        log: trust.log ?? silentLogger,
      });
      return { fetch: hostTrust.fetch, followHostCas: (pems) => hostTrust.update(pems) };
    }
  }
}
