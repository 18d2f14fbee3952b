/**
 * A child process for tls_swap_test.ts (run in a network namespace of its
 * own, so the test chooses `net.ipv4.tcp_migrate_req` without touching the
 * host): starts ./_swap_server.ts, makes connectors send requests on fresh
 * connections while the server swaps certificates, and prints
 * `{"ok":N,"failures":["CODE: message",…],"swaps":N,"resets":N}` (`UNCLASSIFIED: …`
 * for an error the adapter passed through; `resets`: the adapter's
 * `CONNECTION_RESET_BEFORE_SEND`s, sent again or not).
 *
 * Arguments: DIR TRANSPORT CLIENT SWAPS [until-reset]
 * - DIR holds the certificates (a.crt/a.key, server.crt/server.key, ca.crt);
 * - TRANSPORT is `deno` (Deno's fetch, pinned to the CA) or `node` (./node_https_fetch.ts);
 * - CLIENT is `callApi` (the one request client, which resends) or `adapter`
 *   (the classifying adapter alone: no resend);
 * - `until-reset` stops after the swap during which the adapter reported its first
 *   `CONNECTION_RESET_BEFORE_SEND` (SWAPS is then the most swaps).
 *
 * @module
 */
import { z } from "zod";
import { classifyingFetchFailures } from "../../runtime-adapters/deno/fetch_errors.ts";
import { nodeHttpsFetcher } from "../../runtime-adapters/deno/node_https_fetch.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { callApi } from "../../src/protocol/http_client.ts";

const CONNECTORS = 6;
const [dir, transport, client, swapsArg, until] = Deno.args;

/** A swapping server child process. */
async function startSwapServer() {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-read",
      "--allow-net=127.0.0.1",
      new URL("./_swap_server.ts", import.meta.url).pathname,
      `${dir}/a.crt`,
      `${dir}/a.key`,
      `${dir}/server.crt`,
      `${dir}/server.key`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const writer = child.stdin.getWriter();
  let buffered = "";
  const read = async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error("the swap server exited");
    buffered += new TextDecoder().decode(value);
  };
  while (!buffered.includes("\n")) await read();
  const url = buffered.slice(0, buffered.indexOf("\n"));
  buffered = buffered.slice(buffered.indexOf("\n") + 1);
  return {
    url,
    /** Swaps once and waits until the server says it is done. */
    async swap() {
      await writer.write(new Uint8Array([0x73]));
      while (!buffered.includes(".")) await read();
      buffered = buffered.slice(buffered.indexOf(".") + 1);
    },
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
      try {
        child.kill();
      } catch { /* already gone */ }
      await child.status;
    },
  };
}

const ca = await Deno.readTextFile(`${dir}/ca.crt`);
const viaNode = await nodeHttpsFetcher();

/** One request on a new connection (a fresh client or agent each time). */
const fresh: typeof fetch = transport === "node"
  ? (input, init) => viaNode({ ca: [ca] })(input, init)
  : async (input, init) => {
    const c = Deno.createHttpClient({ caCerts: [ca], poolMaxIdlePerHost: 0 });
    try {
      const res = await fetch(input, { ...init, client: c });
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    } finally {
      c.close();
    }
  };
const classified = classifyingFetchFailures(fresh);
/** Resets the adapter reported, whether or not the request client then sent again. */
let resets = 0;
const adapter: typeof fetch = async (input, init) => {
  try {
    return await classified(input, init);
  } catch (err) {
    if (isKeyboundError(err, "CONNECTION_RESET_BEFORE_SEND")) resets++;
    throw err;
  }
};

async function once(url: string): Promise<void> {
  if (client === "callApi") {
    await callApi({ baseUrl: url, fetch: adapter }, {
      method: "POST",
      path: "/",
      body: {},
      response: z.object({ ok: z.literal(true) }),
    });
  } else {
    const res = await adapter(new URL(url), { method: "POST", body: "{}" });
    z.object({ ok: z.literal(true) }).parse(await res.json());
  }
}

await using server = await startSwapServer();
let ok = 0;
let swaps = 0;
const failures: string[] = [];
let stop = false;
const connector = async () => {
  while (!stop) {
    try {
      await once(server.url);
      ok++;
    } catch (err) {
      failures.push(
        isKeyboundError(err)
          ? `${err.code}: ${err.message}`
          : `UNCLASSIFIED: ${err}: ${err instanceof Error ? err.cause : ""}`.slice(0, 300),
      );
    }
  }
};
const running = Array.from({ length: CONNECTORS }, connector);
try {
  while (swaps < Number(swapsArg) && !(until === "until-reset" && resets > 0)) {
    // Let the connectors queue handshakes on the listener the next swap closes.
    await new Promise((r) => setTimeout(r, 60));
    await server.swap();
    swaps++;
  }
} finally {
  stop = true;
  await Promise.all(running);
}
console.log(JSON.stringify({ ok, failures, swaps, resets }));
