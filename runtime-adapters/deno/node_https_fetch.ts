/**
 * A `fetch` over `node:https`, for the two things Deno's own `fetch` cannot
 * do per client: trust the given CAs *only* (`ca` replaces the default root
 * store for the connection; `Deno.createHttpClient({ caCerts })` only adds
 * to it), and skip verification (`--insecure`). It carries what the one
 * request client (src/protocol/http_client.ts) sends: a method, headers, a
 * text body and an abort signal. A failure to connect rejects like `fetch`
 * (`TypeError` with the cause), so ./fetch_errors.ts classifies it alike; a
 * failure before the TLS handshake finished is marked as one before any byte
 * of the request was written.
 *
 * The Node layer costs about 40 ms and 12 MB when first loaded; it is
 * imported only when one of these transports is built.
 *
 * @module
 */
import type { Agent, RequestOptions } from "node:https";
import { FailedBeforeRequest } from "./fetch_errors.ts";

/** What the connection trusts. */
export type NodeHttpsTrust =
  /** The server's certificate must chain to one of these CAs (PEM), and to nothing else. */
  | { ca: string[] }
  /** No verification at all. */
  | { insecure: true };

/**
 * Loads `node:https` and returns a maker of fetches whose TLS connections
 * trust exactly what they are given. Connections are pooled as by Node's
 * global agent (kept alive, an idle one closed after 5 s): a burst of calls
 * (tctl paging) shares one, and a call minutes later (a renewal) opens its
 * own rather than reusing one the server may have closed.
 *
 * @example
 * ```ts ignore
 * const f = (await nodeHttpsFetcher())({ ca: [hostCaPem] });
 * await f("https://auth.example.com:3025/v1/ping");
 * ```
 */
export async function nodeHttpsFetcher(): Promise<(trust: NodeHttpsTrust) => typeof fetch> {
  const https = await import("node:https");
  return (trust) => {
    const agent: Agent = new https.Agent({
      keepAlive: true,
      scheduling: "lifo",
      timeout: 5_000,
      ...("insecure" in trust
        // An explicit (empty) CA list keeps node:tls from loading the system store,
        // which would need --allow-sys; nothing is verified anyway.
        ? { rejectUnauthorized: false, ca: [] }
        : { rejectUnauthorized: true, ca: trust.ca }),
    });
    return ((input: string | URL | Request, init: RequestInit = {}) =>
      send(https.request, agent, input, init)) as typeof fetch;
  };
}

function send(
  request: typeof import("node:https").request,
  agent: Agent,
  input: string | URL | Request,
  init: RequestInit,
): Promise<Response> {
  const url = new URL(input instanceof Request ? input.url : input);
  const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : undefined;
  const headers = new Headers(init.headers);
  if (body !== undefined) headers.set("content-length", String(body.length));
  const options: RequestOptions = {
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port || 443,
    path: url.pathname + url.search,
    method: init.method ?? "GET",
    headers: Object.fromEntries(headers),
    agent,
  };
  const signal = init.signal ?? undefined;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const req = request(options, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("end", () => {
        signal?.removeEventListener("abort", abort);
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (typeof v === "string") out.set(k, v);
        }
        resolve(
          new Response(new Blob(chunks as BlobPart[]), { status: res.statusCode, headers: out }),
        );
      });
      res.on("error", (err) => fail(err));
    });
    // Until the socket's TLS session is up nothing of the request has left this process
    // (node:http queues it): a failure then is marked, so a reset can be sent again.
    let established = false;
    req.on("socket", (socket) => {
      if (req.reusedSocket) established = true;
      else socket.once("secureConnect", () => established = true);
    });
    const fail = (err: unknown) => {
      signal?.removeEventListener("abort", abort);
      const cause = established ? err : new FailedBeforeRequest(err);
      reject(signal?.aborted ? signal.reason : new TypeError("fetch failed", { cause }));
    };
    const abort = () => req.destroy(signal!.reason);
    signal?.addEventListener("abort", abort, { once: true });
    req.on("error", fail);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
