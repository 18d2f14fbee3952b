/**
 * The auth service swaps its TLS certificate during a CA rotation without
 * closing its port (runtime-adapters/deno/serve.ts). Closing the old
 * listener resets the connections the kernel had queued on it, unless
 * `net.ipv4.tcp_migrate_req` is 1; Keybound's Deno clients send again on a
 * new connection when a reset comes before the request was written
 * (runtime-adapters/deno/fetch_errors.ts). Real processes, real TLS.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { issueServerCert } from "../_openssl_pki.ts";
import { missingTools } from "../_tools.ts";
import { classifyingFetchFailures } from "../../runtime-adapters/deno/fetch_errors.ts";

const SWAPS = 20;
const CONNECTORS = 6;

function migrateSysctl(): string | undefined {
  try {
    return Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_migrate_req").trim();
  } catch {
    return undefined;
  }
}

/** A swapping server child process, and the CA both its certificates chain to. */
async function startSwapServer(dir: string) {
  await issueServerCert(dir, "IP:127.0.0.1");
  await Deno.rename(`${dir}/server.crt`, `${dir}/a.crt`);
  await Deno.rename(`${dir}/server.key`, `${dir}/a.key`);
  await issueServerCert(dir, "IP:127.0.0.1");
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
    ca: await Deno.readTextFile(`${dir}/ca.crt`),
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

/** Connects afresh, again and again, while `swaps` runs; counts answers and failures. */
async function hammer(url: string, send: typeof fetch, ca: string, swaps: () => Promise<void>) {
  let ok = 0;
  const failures: string[] = [];
  let stop = false;
  const connector = async () => {
    while (!stop) {
      const client = Deno.createHttpClient({ caCerts: [ca], poolMaxIdlePerHost: 0 });
      try {
        const res = await send(url, { client } as RequestInit);
        if ((await res.text()) === "ok") ok++;
      } catch (err) {
        failures.push(String(err instanceof Error && err.cause ? err.cause : err).slice(0, 160));
      } finally {
        client.close();
      }
    }
  };
  const running = Array.from({ length: CONNECTORS }, connector);
  try {
    await swaps();
  } finally {
    stop = true;
    await Promise.all(running);
  }
  return { ok, failures };
}

const ignore = missingTools("openssl");

Deno.test({
  name: "TLS swap: Keybound's client loses no request while the server swaps certificates",
  ignore: ignore !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await using server = await startSwapServer(dir);
      const { ok, failures } = await hammer(
        server.url,
        classifyingFetchFailures(fetch),
        server.ca,
        async () => {
          for (let i = 0; i < SWAPS; i++) {
            await new Promise((r) => setTimeout(r, 60));
            await server.swap();
          }
        },
      );
      assertEquals(failures, [], `${failures.length} requests failed, ${ok} answered`);
      assert(ok >= SWAPS, `only ${ok} requests answered during ${SWAPS} swaps`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "TLS swap: with net.ipv4.tcp_migrate_req=1 no connection is reset at all",
  ignore: ignore !== undefined || migrateSysctl() !== "1",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await using server = await startSwapServer(dir);
      const { ok, failures } = await hammer(server.url, fetch, server.ca, async () => {
        for (let i = 0; i < SWAPS; i++) {
          await new Promise((r) => setTimeout(r, 60));
          await server.swap();
        }
      });
      assertEquals(failures, [], `${failures.length} connections failed, ${ok} answered`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
