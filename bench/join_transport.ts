/**
 * The floors of a refresh join, measured in the same run as the joins by
 * replaying one captured refresh (bodies, headers and answers of the real
 * sizes) against a bare `Deno.serve` + Deno KV process
 * (`bench/join_transport_server.ts`) that makes the same point reads and one
 * commit of the join's shape:
 * - the transport and storage floor: nothing else (its CPU per refresh);
 * - the protocol floor: also every WebCrypto call of a steady-state refresh,
 *   the server's in the floor server and the client's in this process
 *   between the two requests, with the real code's parallelism. Its p50 is
 *   what the current two-round-trip protocol costs on this machine with no
 *   hono, zod or Keybound logic: the honest floor of the join's p50.
 *
 * Both run with the auth service's V8 flags.
 *
 * @module
 */
import { AUTH_V8_FLAGS } from "../runtime-adapters/deno/auth_process.ts";
import { certificatesFromPem } from "../src/pki/mod.ts";
import { fromBase64, fromBase64Url, fromUtf8, utf8 } from "../src/util/encoding.ts";
import { cpuSeconds } from "./join.ts";
import type { CryptoPlan } from "./join_transport_server.ts";
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

/** The TBS length of a DER certificate (the first element of its outer SEQUENCE). */
function tbsLength(der: Uint8Array): number {
  // A DER length: short form, or 0x8n followed by n big-endian bytes.
  const tlv = (at: number): { header: number; length: number } => {
    const first = der[at + 1];
    if (first < 0x80) return { header: 2, length: first };
    let length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + der[at + 2 + i];
    return { header: 2 + (first & 0x7f), length };
  };
  const tbs = tlv(tlv(0).header);
  return tbs.header + tbs.length;
}

/** The JWS signing input (`header.payload`) of a compact JWS. */
function signingInput(jws: string): string {
  return jws.split(".").slice(0, 2).join(".");
}

/** WebCrypto name of a JWS `alg` of the balanced-v1 suite. */
function jwsKey(jws: string): "Ed25519" | "P-256" {
  const header = JSON.parse(fromUtf8(fromBase64Url(jws.split(".")[0]))) as { alg: string };
  return header.alg === "ES256" ? "P-256" : "Ed25519";
}

/** Bytes of an Ed25519 SSH signature field at the end of a certificate: string(string type, string sig). */
const SSH_ED25519_SIGNATURE_FIELD = 4 + (4 + "ssh-ed25519".length) + (4 + 64);

/**
 * The protocol floor's crypto inputs, taken from a captured refresh so each
 * signature, verification and hash covers as many bytes as the real one.
 */
export function cryptoPlan(exchanges: CapturedExchange[]): CryptoPlan {
  const { begin, cont } = beginAndContinue(exchanges);
  const beginBody = JSON.parse(begin.body) as { previous_join_state?: string };
  const beginReply = JSON.parse(begin.reply) as { step: { challenge: string } };
  const contBody = JSON.parse(cont.body) as { session: string; answer: { solution: string } };
  const result = (JSON.parse(cont.reply) as {
    result: {
      certificates: { tls_cert: string; ssh_cert: string };
      bound_keypair: { join_state: string };
    };
  }).result;
  const authorization = cont.headers.authorization ?? cont.headers.Authorization;
  if (!authorization || !beginBody.previous_join_state) {
    throw new Error("the captured exchange is not a refresh (no signature or join state)");
  }
  const requestJws = authorization.split(" ")[1];
  const cert = certificatesFromPem(result.certificates.tls_cert)[0];
  const sshBlob = fromBase64(result.certificates.ssh_cert.split(" ")[1]);
  return {
    certificateKey: jwsKey(requestJws),
    // IV and GCM tag around the sealed JSON.
    sessionBytes: fromBase64Url(contBody.session).length - 12 - 16,
    requestInput: signingInput(requestJws),
    challenge: beginReply.step.challenge,
    solutionInput: signingInput(contBody.answer.solution),
    joinStateInput: signingInput(beginBody.previous_join_state),
    tbsBytes: tbsLength(cert),
    certBytes: cert.length,
    sshSignedBytes: sshBlob.length - SSH_ED25519_SIGNATURE_FIELD,
    newJoinStateInput: signingInput(result.bound_keypair.join_state),
  };
}

function beginAndContinue(exchanges: CapturedExchange[]) {
  const begin = exchanges.find((e) => e.step === "begin");
  const cont = exchanges.find((e) => e.step === "continue");
  if (!begin || !cont) throw new Error("the captured refresh lacks a begin or a continue");
  return { begin, cont };
}

/**
 * The client's WebCrypto work between the two requests of a refresh
 * (src/agent/join_client.ts): the challenge's hash beside the solution's
 * signature, then the `continue` body's hash, then the request's signature.
 */
async function clientCrypto(plan: CryptoPlan, continueBody: string): Promise<() => Promise<void>> {
  const params = (name: string) =>
    name === "P-256" ? { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } : { name };
  const pair = (name: string) =>
    crypto.subtle.generateKey(params(name), false, ["sign", "verify"]) as Promise<CryptoKeyPair>;
  const [cert, bound] = await Promise.all([pair(plan.certificateKey), pair("Ed25519")]);
  const challenge = utf8(plan.challenge);
  const solution = utf8(plan.solutionInput);
  const body = utf8(continueBody);
  const request = utf8(plan.requestInput);
  return async () => {
    await Promise.all([
      crypto.subtle.digest("SHA-256", challenge),
      crypto.subtle.sign(params("Ed25519"), bound.privateKey, solution),
    ]);
    await crypto.subtle.digest("SHA-256", body);
    await crypto.subtle.sign(params(plan.certificateKey), cert.privateKey, request);
  };
}

/** A running floor server and the refresh that drives it. */
export interface FloorServer {
  /** One refresh of bot `bot` (its two requests, and with crypto the client's share). */
  refresh(bot: number): Promise<void>;
  /**
   * With crypto, an estimate of a one-round-trip refresh's floor: the
   * client's calls, then the `continue` alone (no `begin`; the server still
   * opens a session and hashes a challenge, so it is a little high).
   */
  oneTrip(bot: number): Promise<void>;
  /** The server's process id. */
  pid: number;
  /** The server process's CPU seconds so far (null without procfs). */
  cpuSeconds(): Promise<number | null>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/**
 * Starts the floor server (`bench/join_transport_server.ts`) replaying the
 * captured refresh: the transport and storage floor, or with `withCrypto` the
 * protocol floor (both sides' WebCrypto calls too), its requests sent with
 * `fetchFn`. It runs with the auth service's V8 flags, then `denoFlags` (an
 * inspector, say). Warmed up with 50 refreshes.
 */
export async function startFloorServer(
  exchanges: CapturedExchange[],
  workDir: string,
  withCrypto: boolean,
  fetchFn: typeof fetch = fetch,
  denoFlags: string[] = [],
): Promise<FloorServer> {
  const { begin, cont } = beginAndContinue(exchanges);
  const dir = await Deno.makeTempDir({ dir: workDir, prefix: "transport-" });
  await Deno.writeTextFile(`${dir}/begin.json`, begin.reply);
  await Deno.writeTextFile(`${dir}/continue.json`, cont.reply);
  const plan = withCrypto ? cryptoPlan(exchanges) : null;
  if (plan) await Deno.writeTextFile(`${dir}/plan.json`, JSON.stringify(plan));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-kv",
      AUTH_V8_FLAGS,
      ...denoFlags,
      new URL("./join_transport_server.ts", import.meta.url).pathname,
      `${dir}/floor.kv`,
      `${dir}/begin.json`,
      `${dir}/continue.json`,
      ...(plan ? [`${dir}/plan.json`] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
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
      const res = await fetchFn(`${base}/${e.step}?bot=${bot}`, {
        method: "POST",
        headers: e.headers,
        body: e.body,
      });
      if (!res.ok) throw new Error(`transport floor server answered ${res.status}`);
      return await res.text();
    };
    const between = plan ? await clientCrypto(plan, cont.body) : null;
    const refresh = async (bot: number) => {
      const step = await post(begin, bot);
      if (between) {
        JSON.parse(step);
        await between();
        JSON.parse(await post(cont, bot));
      } else {
        await post(cont, bot);
      }
    };
    for (let i = 0; i < 50; i++) await refresh(i);
    const oneTrip = async (bot: number) => {
      if (!between) throw new Error("a one-round-trip floor needs the crypto plan");
      await between();
      JSON.parse(await post(cont, bot));
    };
    return { refresh, oneTrip, pid: child.pid, cpuSeconds: () => cpuSeconds(child.pid), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Replays the captured `begin` and `continue` of one refresh `total` times
 * against the transport floor server, `inFlight` refreshes at once.
 */
export async function measureTransportFloor(
  exchanges: CapturedExchange[],
  workDir: string,
  total: number,
  inFlight: number,
): Promise<TransportFloor> {
  const server = await startFloorServer(exchanges, workDir, false);
  try {
    const cpu0 = await server.cpuSeconds();
    const { latencies } = await runConcurrent(
      total,
      inFlight,
      (_i, worker) => server.refresh(worker),
    );
    const cpu1 = await server.cpuSeconds();
    return {
      cpuMs: cpu0 === null || cpu1 === null ? NaN : (1000 * (cpu1 - cpu0)) / total,
      p50: percentile(latencies, 50),
    };
  } finally {
    await server.stop();
  }
}
