/**
 * How tbot on Deno reaches the auth service under each trust mode: system
 * roots, a CA file, CA pins, or nothing at all (`insecure`). I/O only: the
 * pin policy is `src/agent/trust/`.
 *
 * Pins: Deno's `fetch` cannot skip verification for one request, so the
 * first contact goes through `node:tls` with verification off
 * ({@linkcode fetchUnverified}); after the policy has accepted a CA, every
 * request verifies against the saved host CAs only (./exclusive_trust.ts),
 * as with a CA file. Only the system-roots mode lets Deno's root store vouch
 * for the server too.
 *
 * @module
 */
import type { TLSSocket } from "node:tls";
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
import { concatBytes } from "../../src/util/encoding.ts";

/** Longest wait for the unverified bootstrap connection. */
const BOOTSTRAP_TIMEOUT_MS = 15_000;
/** Largest answer accepted on the unverified connection. */
const BOOTSTRAP_MAX_BYTES = 256 * 1024;

/** A fetch that verifies the server against `caPems` and Deno's default root store. */
function fetchTrustingAlsoRoots(caPems: string[]): typeof fetch {
  if (caPems.length === 0) return fetch;
  const client = Deno.createHttpClient({ caCerts: caPems, poolIdleTimeout: CLIENT_POOL_IDLE_MS });
  return ((input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, client })) as typeof fetch;
}

/**
 * The first contact of the pin policy: the server's leaf certificate (DER)
 * and the answer to `GET /v1/ca/host`, over a connection that is NOT verified.
 */
export async function fetchUnverified(baseUrl: string): Promise<FirstContactResult> {
  const url = new URL(baseUrl);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 443);
  // node:tls is loaded only for this one bootstrap connection: every other run
  // (and every refresh) goes through fetch, and the Node layer costs ~50 ms and ~8 MB.
  const [{ connect }, { isIP }] = await Promise.all([import("node:tls"), import("node:net")]);
  const socket: TLSSocket = connect({
    host,
    port,
    rejectUnauthorized: false,
    ALPNProtocols: ["http/1.1"],
    ...(isIP(host) ? {} : { servername: host }),
  });
  return await new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let leafDer: Uint8Array | undefined;
    const fail = (message: string, cause?: unknown) => {
      socket.destroy();
      reject(new KeyboundError("CONNECTION_FAILED", `${baseUrl}: ${message}`, { cause }));
    };
    const timer = setTimeout(
      () => fail("no answer in time while learning the host CA"),
      BOOTSTRAP_TIMEOUT_MS,
    );
    socket.on("secureConnect", () => {
      const raw = socket.getPeerCertificate(true)?.raw;
      if (!raw) return fail("the server presented no TLS certificate");
      leafDer = new Uint8Array(raw);
      socket.write(
        `GET ${HOST_CA_PATH} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: application/json\r\n` +
          `Connection: close\r\n\r\n`,
      );
    });
    socket.on("data", (c: Uint8Array) => {
      size += c.length;
      if (size > BOOTSTRAP_MAX_BYTES) return fail("the answer is too large");
      chunks.push(new Uint8Array(c));
    });
    socket.on("error", (err: Error) => {
      clearTimeout(timer);
      // The request is written at secureConnect, so before it (no leaf yet) nothing was
      // sent: a reset then is one the caller may send again after (src/agent/trust/).
      const reset = leafDer
        ? undefined
        : resetBeforeSendError(new FailedBeforeRequest(err), url.host);
      if (reset) {
        socket.destroy();
        return reject(reset);
      }
      fail(`cannot connect: ${err.message}`, err);
    });
    socket.on("end", () => {
      clearTimeout(timer);
      socket.destroy();
      // Deno's node:tls reports a reset during the handshake as an end, like a close: either
      // way the request (written at secureConnect) was not sent, and may be sent again.
      if (!leafDer) {
        return reject(resetBeforeSend(url.host, new Error("the TLS handshake did not complete")));
      }
      try {
        resolve({ leafDer, ...parseHttpResponse(concatBytes(...chunks)) });
      } catch (err) {
        fail((err as Error).message, err);
      }
    });
  });
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
