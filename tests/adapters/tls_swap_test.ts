/**
 * The auth service swaps its TLS certificate (CA rotation, its own renewal)
 * on the listener it has (runtime-adapters/deno/serve.ts, tls_front.ts):
 * new connections get the new certificate, and nothing is closed or reset,
 * so no request fails, not even without the request client's resend.
 *
 * A real server process (./_swap_server.ts) swaps between two certificates
 * from unrelated CAs while connectors send requests: on fresh connections
 * through Deno's fetch and through ./node_https_fetch.ts, and on one
 * kept-alive connection. Each request goes through the classifying adapter
 * alone (no resend), so a reset would be a failure. After each swap a fresh
 * connection that trusts only the new CA must succeed and one that trusts
 * only the old CA must fail.
 *
 * @module
 */
import * as z from "zod";
import { assert, assertEquals } from "../_assert.ts";
import { issueServerCert } from "../_openssl_pki.ts";
import { missingTools } from "../_tools.ts";
import { classifyingFetchFailures } from "../../runtime-adapters/deno/fetch_errors.ts";
import { nodeHttpsFetcher } from "../../runtime-adapters/deno/node_https_fetch.ts";
import { isKeyboundError } from "../../src/errors.ts";

const SWAPS = 20;
const CONNECTORS_PER_TRANSPORT = 3;

/** Two unrelated CAs in `dir`/a and `dir`/b, each with a server certificate for 127.0.0.1. */
async function twoCas(dir: string): Promise<void> {
  for (const name of ["a", "b"]) {
    await Deno.mkdir(`${dir}/${name}`);
    await issueServerCert(`${dir}/${name}`, "IP:127.0.0.1");
  }
}

/** The swapping server child process. */
async function startSwapServer(dir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      // The server behind the front listens on a Unix socket in DIR/front,
      // which it makes (the front connects to it: net access).
      "--allow-write",
      "--allow-net",
      // uid: the owner checks of the socket's path.
      "--allow-sys=uid",
      new URL("./_swap_server.ts", import.meta.url).pathname,
      `${dir}/a/server.crt`,
      `${dir}/a/server.key`,
      `${dir}/b/server.crt`,
      `${dir}/b/server.key`,
      `${dir}/front`,
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

/** Deno's fetch on a new connection trusting `cas`. */
function freshDeno(cas: string[]): typeof fetch {
  return async (input, init) => {
    const c = Deno.createHttpClient({ caCerts: cas, poolMaxIdlePerHost: 0 });
    try {
      const res = await fetch(input, { ...init, client: c });
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    } finally {
      c.close();
    }
  };
}

Deno.test({
  name: "TLS swap: under a connection hammer no request fails and new connections get the new CA",
  ignore: missingTools("openssl") !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await twoCas(dir);
      const ca = {
        a: await Deno.readTextFile(`${dir}/a/ca.crt`),
        b: await Deno.readTextFile(`${dir}/b/ca.crt`),
      };
      await using server = await startSwapServer(dir);
      const viaNode = await nodeHttpsFetcher();
      const kept = Deno.createHttpClient({ caCerts: [ca.a, ca.b] });
      const transports: Record<string, typeof fetch> = {
        deno: freshDeno([ca.a, ca.b]),
        node: (input, init) => viaNode({ ca: [ca.a, ca.b] })(input, init),
        "kept-alive": async (input, init) => {
          const res = await fetch(input, { ...init, client: kept });
          return new Response(await res.arrayBuffer(), { status: res.status });
        },
      };
      const counts: Record<string, number> = {};
      const failures: string[] = [];
      let stop = false;
      const connector = async (name: string) => {
        const send = classifyingFetchFailures(transports[name]);
        while (!stop) {
          try {
            const res = await send(new URL(server.url), { method: "POST", body: "{}" });
            z.object({ ok: z.literal(true) }).parse(await res.json());
            counts[name] = (counts[name] ?? 0) + 1;
          } catch (err) {
            failures.push(
              `${name}: ${isKeyboundError(err) ? err.code : "UNCLASSIFIED"}: ${err}`.slice(0, 300),
            );
          }
        }
      };
      const running = [
        ...Array.from({ length: CONNECTORS_PER_TRANSPORT }, () => connector("deno")),
        ...Array.from({ length: CONNECTORS_PER_TRANSPORT }, () => connector("node")),
        connector("kept-alive"),
      ];
      const wrongCa: number[] = [];
      try {
        for (let swap = 1; swap <= SWAPS; swap++) {
          await new Promise((r) => setTimeout(r, 30));
          await server.swap();
          // Swap n serves b when n is odd, a when even.
          const [current, previous] = swap % 2 ? [ca.b, ca.a] : [ca.a, ca.b];
          const answer = await freshDeno([current])(server.url, { method: "POST", body: "{}" });
          assertEquals(await answer.json(), { ok: true });
          const old = await freshDeno([previous])(server.url).then(
            (r) => r.body?.cancel(),
            () => 0,
          );
          if (old !== 0) wrongCa.push(swap);
        }
      } finally {
        stop = true;
        await Promise.all(running);
        kept.close();
      }
      assertEquals(wrongCa, [], "swaps after which a new connection still met the old CA");
      assertEquals(
        failures,
        [],
        `${failures.length} requests failed; answered: ${JSON.stringify(counts)}`,
      );
      for (const name of Object.keys(transports)) assert(counts[name] > 0, `no ${name} answer`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
