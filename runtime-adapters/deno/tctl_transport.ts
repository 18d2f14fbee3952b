/**
 * How tctl reaches the auth service on Deno: `fetch` through a TLS client
 * that trusts the cluster's host CA (from the identity file), plain `fetch`
 * for `http://` on loopback, or, with `--insecure`, an HTTPS request that
 * skips certificate verification (Deno's fetch has no per-client switch for
 * that, so it goes through `node:https`).
 *
 * @module
 */
import https from "node:https";
import { KeyboundError } from "../../src/errors.ts";
import { classifyingFetchFailures } from "./fetch_errors.ts";

/** Input of {@linkcode createTctlFetch}. */
export interface TransportOptions {
  /** The auth service's base URL. */
  baseUrl: string;
  /** Host CA certificates (PEM) to trust. */
  hostCaPems: string[];
  /** Skip verification of the server certificate. */
  insecure: boolean;
}

/** A fetch that does not verify the server's certificate (`--insecure`). */
function insecureFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const url = new URL(input instanceof Request ? input.url : input);
  const body = typeof init.body === "string" ? init.body : undefined;
  const headers = new Headers(init.headers);
  if (body !== undefined) {
    headers.set("content-length", String(new TextEncoder().encode(body).length));
  }
  return new Promise((resolve, reject) => {
    const req = https.request({
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port || 443,
      path: url.pathname + url.search,
      method: init.method ?? "GET",
      headers: Object.fromEntries(headers),
      rejectUnauthorized: false,
      // An explicit (empty) CA list keeps node:tls from loading the system store,
      // which would need --allow-sys; nothing is verified anyway.
      ca: [],
    }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("end", () => {
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (typeof v === "string") out.set(k, v);
        }
        resolve(
          new Response(new Blob(chunks as BlobPart[]), { status: res.statusCode, headers: out }),
        );
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The fetch tctl uses for `options.baseUrl`. */
export function createTctlFetch(options: TransportOptions): typeof fetch {
  if (options.baseUrl.startsWith("http://")) return fetch;
  if (options.insecure) return insecureFetch as typeof fetch;
  if (options.hostCaPems.length === 0) {
    throw new KeyboundError(
      "BAD_PARAMETER",
      "the identity file has no host CA certificate to verify the auth service with " +
        "(pass --insecure to skip verification)",
    );
  }
  const client = Deno.createHttpClient({ caCerts: options.hostCaPems });
  return classifyingFetchFailures(
    ((input: string | URL | Request, init?: RequestInit) =>
      fetch(input, { ...init, client })) as typeof fetch,
  );
}
