/**
 * A real HTTP proxy on loopback in front of a real auth service that can
 * drop the answer of a join the server committed: it forwards the request,
 * lets the server finish, and then breaks the connection instead of
 * delivering the result — what a crash, an OOM kill or a lost connection
 * does to a client right after the commit.
 *
 * @module
 */

/** A running proxy. */
export interface DroppingProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Drops the answer of the next `continue` that carries a join result. */
  dropNextResult(): void;
  /** Answers dropped so far. */
  dropped(): number;
  /** Stops the proxy. */
  close(): Promise<void>;
}

const CONTINUE = "/v1/join/bound-keypair/continue";

/** Starts a proxy to `upstream` (HTTPS, trusting `caPem`). */
export function startDroppingProxy(upstream: string, caPem: string): DroppingProxy {
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  let armed = false;
  let dropped = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.bytes();
    const headers = new Headers(req.headers);
    headers.delete("host");
    const res = await fetch(new URL(url.pathname + url.search, upstream), {
      method: req.method,
      headers,
      body,
      client,
    });
    const bytes = await res.bytes();
    if (armed && url.pathname === CONTINUE && res.ok) {
      const answer = JSON.parse(new TextDecoder().decode(bytes)) as { result?: unknown };
      if (answer.result) {
        armed = false;
        dropped++;
        // The server committed; the client gets a broken connection.
        return new Response(
          new ReadableStream({ start: (c) => c.error(new Error("answer dropped")) }),
        );
      }
    }
    return new Response(bytes, { status: res.status, headers: res.headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    dropNextResult: () => void (armed = true),
    dropped: () => dropped,
    close: async () => {
      await server.shutdown();
      client.close();
    },
  };
}
