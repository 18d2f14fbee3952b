/**
 * The transport and storage floor of a refresh join, measured in the same
 * run as the joins: the CPU a bare `Deno.serve` + Deno KV process
 * (`bench/join_transport_server.ts`) spends per refresh on the same two
 * requests (captured from a real refresh: bodies, headers and answers of the
 * real sizes), the same point reads and one commit of the join's shape. With
 * the crypto floor it bounds from below what the auth service can reach
 * while it serves HTTP with Deno and stores in Deno KV.
 *
 * @module
 */
import { cpuSeconds } from "./join.ts";
import { percentile, runConcurrent } from "./stats.ts";

/** One request of a refresh and its answer, as sent and received. */
export interface CapturedExchange {
  /** Last path segment: `begin` or `continue`. */
  step: string;
  /** Request headers. */
  headers: Record<string, string>;
  /** Request body. */
  body: string;
  /** Response body. */
  reply: string;
}

/** A `fetch` that records each exchange into `into`. */
export function capturingFetch(into: CapturedExchange[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const reply = await res.text();
    into.push({
      step: new URL(String(input)).pathname.split("/").pop()!,
      headers: { ...(init?.headers as Record<string, string>) },
      body: String(init?.body ?? ""),
      reply,
    });
    return new Response(reply, { status: res.status, headers: res.headers });
  };
}

/** Result of {@linkcode measureTransportFloor}. */
export interface TransportFloor {
  /** Server process CPU per refresh (two requests), ms. */
  cpuMs: number;
  /** Median wall time of the two requests, ms. */
  p50: number;
}

/**
 * Replays the captured `begin` and `continue` of one refresh `total` times
 * against the floor server, `inFlight` refreshes at once.
 */
export async function measureTransportFloor(
  exchanges: CapturedExchange[],
  workDir: string,
  total: number,
  inFlight: number,
): Promise<TransportFloor> {
  const begin = exchanges.find((e) => e.step === "begin");
  const cont = exchanges.find((e) => e.step === "continue");
  if (!begin || !cont) throw new Error("the captured refresh lacks a begin or a continue");
  const dir = await Deno.makeTempDir({ dir: workDir, prefix: "transport-" });
  await Deno.writeTextFile(`${dir}/begin.json`, begin.reply);
  await Deno.writeTextFile(`${dir}/continue.json`, cont.reply);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-kv",
      new URL("./join_transport_server.ts", import.meta.url).pathname,
      `${dir}/floor.kv`,
      `${dir}/begin.json`,
      `${dir}/continue.json`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let banner = "";
    while (!/port \d+/.test(banner)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the transport floor server exited: ${banner}`);
      banner += value;
    }
    await reader.cancel();
    const base = `http://127.0.0.1:${/port (\d+)/.exec(banner)![1]}/v1/join/bound-keypair`;
    const post = async (e: CapturedExchange, bot: number) => {
      const res = await fetch(`${base}/${e.step}?bot=${bot}`, {
        method: "POST",
        headers: e.headers,
        body: e.body,
      });
      if (!res.ok) throw new Error(`transport floor server answered ${res.status}`);
      await res.arrayBuffer();
    };
    const refresh = async (_i: number, bot: number) => {
      await post(begin, bot);
      await post(cont, bot);
    };
    for (let i = 0; i < 50; i++) await refresh(i, i % inFlight);
    const cpu0 = await cpuSeconds(child.pid);
    const { latencies } = await runConcurrent(total, inFlight, refresh);
    const cpu1 = await cpuSeconds(child.pid);
    return {
      cpuMs: cpu0 === null || cpu1 === null ? NaN : (1000 * (cpu1 - cpu0)) / total,
      p50: percentile(latencies, 50),
    };
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}
