/**
 * How tbot on Deno reaches the auth service under each trust mode: system
 * roots, a CA file, CA pins, or nothing at all (`insecure`). I/O only: the
 * pin policy is `src/agent/trust/`.
 *
 * Pins: Deno's `fetch` cannot skip verification for one request, so the
 * first contact goes through `node:tls` with verification off
 * ({@linkcode fetchUnverified}); after the policy has accepted a CA, a
 * `Deno.HttpClient` verifies against it.
 *
 * @module
 */
import type { TLSSocket } from "node:tls";
import {
  checkCaFile,
  type FirstContactResult,
  HOST_CA_PATH,
  parseHttpResponse,
  pinnedHostCa,
} from "../../src/agent/trust/mod.ts";
import type { TrustSettings } from "../../src/cli/tbot/platform.ts";
import { KeyboundError } from "../../src/errors.ts";
import { concatBytes } from "../../src/util/encoding.ts";

/** Longest wait for the unverified bootstrap connection. */
const BOOTSTRAP_TIMEOUT_MS = 15_000;
/** Largest answer accepted on the unverified connection. */
const BOOTSTRAP_MAX_BYTES = 256 * 1024;

/** A fetch that verifies the server against `caPems` (in addition to the system roots). */
export function fetchTrusting(caPems: string[]): typeof fetch {
  const client = Deno.createHttpClient({ caCerts: caPems });
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
      fail(`cannot connect: ${err.message}`, err);
    });
    socket.on("end", () => {
      clearTimeout(timer);
      socket.destroy();
      if (!leafDer) return fail("the TLS handshake did not complete");
      try {
        resolve({ leafDer, ...parseHttpResponse(concatBytes(...chunks)) });
      } catch (err) {
        fail((err as Error).message, err);
      }
    });
  });
}

/** Builds the fetch for `baseUrl` under `trust`. */
export async function createTrustedFetch(
  baseUrl: string,
  trust: TrustSettings,
  readTextFile: (path: string) => Promise<string>,
): Promise<typeof fetch> {
  switch (trust.mode) {
    case "system":
    case "plain_http":
      return fetch;
    case "insecure": {
      // node:https, only in this mode (see fetchUnverified).
      const { createTctlFetch } = await import("./tctl_transport.ts");
      return createTctlFetch({ baseUrl, hostCaPems: [], insecure: true });
    }
    case "ca_path": {
      const pem = await readTextFile(trust.path);
      checkCaFile(pem, trust.path);
      return fetchTrusting([pem]);
    }
    case "pins":
      return fetchTrusting([
        await pinnedHostCa(baseUrl, trust.pins, trust.storage, fetchUnverified),
      ]);
  }
}
