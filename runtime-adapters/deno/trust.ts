/**
 * How tbot on Deno trusts the auth service: system roots, a CA file, CA pins
 * (what `tctl status` prints), or nothing at all (`insecure`).
 *
 * Pins: Deno's `fetch` cannot skip verification for one request, so the
 * first connection goes through `node:tls` with verification off. Over that
 * one connection the agent reads the server's leaf certificate and
 * `GET /v1/ca/host`, accepts a CA only if its SPKI hash equals a pin AND its
 * key signed the leaf, saves it to storage (`host_ca.pem`), and from then on
 * uses a `Deno.HttpClient` that verifies against it. Later runs start from
 * the saved CA and skip the unverified step.
 *
 * @module
 */
import type { TLSSocket } from "node:tls";
import { readText, STORAGE_FILES, writeText } from "../../src/agent/storage.ts";
import type { AgentStorage } from "../../src/agent/storage.ts";
import type { TrustSettings } from "../../src/cli/tbot/platform.ts";
import { KeyboundError } from "../../src/errors.ts";
import {
  certificatesFromPem,
  certificateToPem,
  parseCertificate,
  spkiPin,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";

/** Path the host CA is served at (docs/protocol.md §3). */
export const HOST_CA_PATH = "/v1/ca/host";

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

/** The server's leaf certificate (DER) and the body of `GET /v1/ca/host`, unverified. */
export async function fetchUnverified(
  baseUrl: string,
): Promise<{ leafDer: Uint8Array; status: number; body: string }> {
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
        resolve({ leafDer, ...parseHttpResponse(concat(chunks)) });
      } catch (err) {
        fail((err as Error).message, err);
      }
    });
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Parses an HTTP/1.1 response read to the end (Content-Length, chunked, or close-delimited). */
export function parseHttpResponse(bytes: Uint8Array): { status: number; body: string } {
  const text = new TextDecoder().decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) throw new Error("the answer is not HTTP");
  const [statusLine, ...headerLines] = text.slice(0, split).split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw new Error("the answer is not HTTP");
  const headers = new Map(headerLines.map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const;
  }));
  let body = text.slice(split + 4);
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    let out = "";
    let rest = body;
    for (;;) {
      const eol = rest.indexOf("\r\n");
      const n = parseInt(rest.slice(0, eol), 16);
      if (eol < 0 || Number.isNaN(n)) throw new Error("malformed chunked answer");
      if (n === 0) break;
      out += rest.slice(eol + 2, eol + 2 + n);
      rest = rest.slice(eol + 2 + n + 2);
    }
    body = out;
  }
  return { status: Number(m[1]), body };
}

/**
 * Learns the host CA over an unverified connection and accepts it only if
 * its SPKI pin is in `pins` and it signed the server's certificate. Returns
 * the CA's PEM.
 */
export async function learnPinnedCa(baseUrl: string, pins: string[]): Promise<string> {
  const { leafDer, status, body } = await fetchUnverified(baseUrl);
  if (status !== 200) {
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `${baseUrl}${HOST_CA_PATH} answered HTTP ${status}; is this a Keybound auth service?`,
    );
  }
  let pems: unknown;
  try {
    pems = (JSON.parse(body) as { tls_ca_certs?: unknown }).tls_ca_certs;
  } catch {
    pems = undefined;
  }
  if (!Array.isArray(pems) || !pems.every((p) => typeof p === "string")) {
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `${baseUrl}${HOST_CA_PATH} did not answer with host CA certificates; is this a Keybound auth service?`,
    );
  }
  const leaf = parseCertificate(leafDer);
  const wanted = new Set(pins.map((p) => p.toLowerCase()));
  const seen: string[] = [];
  for (const pem of pems as string[]) {
    for (const der of certificatesFromPem(pem)) {
      const ca = parseCertificate(der);
      const pin = await spkiPin(ca);
      seen.push(pin);
      if (!wanted.has(pin)) continue;
      if (!await verifyCertificateSignature(leaf, await ca.publicKey())) {
        throw new KeyboundError(
          "CONNECTION_FAILED",
          `${baseUrl}: the server's TLS certificate was not issued by the pinned host CA; refusing to connect`,
        );
      }
      return certificateToPem(der);
    }
  }
  throw new KeyboundError(
    "CONNECTION_FAILED",
    `${baseUrl}: the host CA the server presents (${seen.join(", ") || "none"}) matches none of ` +
      `onboarding.ca_pins; refusing to connect (check the pin with \`tctl status\`)`,
  );
}

/** The pinned CA saved by an earlier run, if it still matches a pin. */
async function savedPinnedCa(storage: AgentStorage, pins: string[]): Promise<string | null> {
  const pem = await readText(storage, STORAGE_FILES.hostCa);
  if (!pem) return null;
  try {
    const pin = await spkiPin(parseCertificate(certificatesFromPem(pem)[0]));
    return pins.some((p) => p.toLowerCase() === pin) ? pem : null;
  } catch {
    return null;
  }
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
      try {
        certificatesFromPem(pem);
      } catch (cause) {
        throw new KeyboundError(
          "CONFIG_INVALID",
          `onboarding.ca_path: ${trust.path} holds no PEM certificate`,
          { cause },
        );
      }
      return fetchTrusting([pem]);
    }
    case "pins": {
      let pem = await savedPinnedCa(trust.storage, trust.pins);
      if (!pem) {
        pem = await learnPinnedCa(baseUrl, trust.pins);
        await writeText(trust.storage, STORAGE_FILES.hostCa, pem);
      }
      return fetchTrusting([pem]);
    }
  }
}
