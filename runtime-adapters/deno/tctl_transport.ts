/**
 * How tctl reaches the auth service on Deno: `fetch` verifying the server
 * against the cluster's host CAs from the identity file, plus the CAs of
 * `--ca-path` (an operator PKI), and nothing else (./exclusive_trust.ts);
 * plain `fetch` for `http://` on loopback; or, with `--insecure`, an HTTPS
 * request that skips certificate verification (./node_https_fetch.ts: Deno's
 * fetch has no per-client switch for that).
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import { classifyingFetchFailures } from "./fetch_errors.ts";
import { fetchTrustingOnly } from "./exclusive_trust.ts";
import { nodeHttpsFetcher } from "./node_https_fetch.ts";

/** Input of {@linkcode createTctlFetch}. */
export interface TransportOptions {
  /** The auth service's base URL. */
  baseUrl: string;
  /** Host CA certificates (PEM) from the identity file. */
  hostCaPems: string[];
  /** CA certificates (PEM) of `--ca-path`; with the host CAs, the only CAs trusted. */
  caPems?: string[];
  /** Skip verification of the server certificate. */
  insecure: boolean;
}

/** The fetch tctl uses for `options.baseUrl`. */
export async function createTctlFetch(options: TransportOptions): Promise<typeof fetch> {
  if (options.baseUrl.startsWith("http://")) return fetch;
  if (options.insecure) {
    return classifyingFetchFailures((await nodeHttpsFetcher())({ insecure: true }));
  }
  const trusted = [...options.hostCaPems, ...options.caPems ?? []];
  if (trusted.length === 0) {
    throw new KeyboundError(
      "BAD_PARAMETER",
      "the identity file has no host CA certificate to verify the auth service with " +
        "(pass --ca-path FILE with the CA that issued its certificate)",
    );
  }
  return classifyingFetchFailures((await fetchTrustingOnly())(trusted));
}
