/**
 * A real HTTP proxy on loopback in front of a real auth service, for crash
 * tests. It can drop the answer of a join the server committed (forward the
 * request, let the server finish, then break the connection instead of
 * delivering the result — what a crash, an OOM kill or a lost connection
 * does to a client right after the commit), tell a test when a join begins
 * or its result is ready (to kill the client there), and switch upstream
 * (an auth service restarted on another port).
 *
 * @module
 */

/** Test hooks, called in the proxy's request handler. */
export interface JoinProxyHooks {
  /** A `begin` arrived (called before it is forwarded). */
  onBegin?(): void;
  /** A `continue` arrived; forwarded once this resolves. */
  beforeContinue?(): Promise<void>;
  /** A `continue` result is ready; resolve false to drop it. */
  onResult?(): Promise<boolean> | boolean;
  /** A `resume` result is ready; resolve false to drop it. */
  onResumeResult?(): Promise<boolean> | boolean;
}

/** A running proxy. */
export interface DroppingProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Drops the answer of the next `continue` that carries a join result. */
  dropNextResult(): void;
  /** Answers dropped so far. */
  dropped(): number;
  /** Forwards to another upstream from now on. */
  setUpstream(url: string): void;
  /** Hooks (replaceable at any time). */
  hooks: JoinProxyHooks;
  /** Stops the proxy. */
  close(): Promise<void>;
}

const BEGIN = "/v1/join/bound-keypair/begin";
const CONTINUE = "/v1/join/bound-keypair/continue";
const RESUME = "/v1/join/bound-keypair/resume";

/** Starts a proxy to `upstream` (HTTPS trusting `caPem`, or plain HTTP without it). */
export function startDroppingProxy(upstream: string, caPem?: string): DroppingProxy {
  const client = caPem ? Deno.createHttpClient({ caCerts: [caPem] }) : undefined;
  let armed = false;
  let dropped = 0;
  let target = upstream;
  const broken = () =>
    new Response(new ReadableStream({ start: (c) => c.error(new Error("answer dropped")) }));
  const proxy: DroppingProxy = {
    url: "",
    dropNextResult: () => void (armed = true),
    dropped: () => dropped,
    setUpstream: (url) => void (target = url),
    hooks: {},
    close: async () => {
      await server.shutdown();
      client?.close();
    },
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    onError: () => new Response(null, { status: 502 }),
  }, async (req) => {
    const url = new URL(req.url);
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.bytes();
    if (url.pathname === BEGIN) proxy.hooks.onBegin?.();
    if (url.pathname === CONTINUE) await proxy.hooks.beforeContinue?.();
    const headers = new Headers(req.headers);
    headers.delete("host");
    let res: Response;
    try {
      res = await fetch(new URL(url.pathname + url.search, target), {
        method: req.method,
        headers,
        body,
        ...(client ? { client } : {}),
      });
    } catch {
      return new Response(null, { status: 502 }); // the auth service is down
    }
    const bytes = await res.bytes();
    if (url.pathname === CONTINUE && res.ok) {
      const answer = JSON.parse(new TextDecoder().decode(bytes)) as { result?: unknown };
      if (answer.result) {
        const deliver = armed ? false : await (proxy.hooks.onResult?.() ?? true);
        if (!deliver) {
          armed = false;
          dropped++;
          return broken(); // the server committed; the client gets a broken connection
        }
      }
    }
    if (url.pathname === RESUME && res.ok && !(await (proxy.hooks.onResumeResult?.() ?? true))) {
      return broken();
    }
    return new Response(bytes, { status: res.status, headers: res.headers });
  });
  proxy.url = `http://127.0.0.1:${server.addr.port}`;
  return proxy;
}
