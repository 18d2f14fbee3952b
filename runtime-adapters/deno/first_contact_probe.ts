/**
 * The unverified TLS connection of a CA pin's first contact (./trust.ts), as
 * a program of its own: `deno run --no-config --allow-net=HOST:PORT
 * first_contact_probe.ts URL` connects to URL with verification off, sends
 * `GET /v1/ca/host`, and prints one JSON line, {@linkcode ProbeOutcome}.
 *
 * Why a separate process: Deno's fetch cannot skip verification, so this
 * connection needs `node:tls`, and once a process has loaded and run
 * `node:tls`/`node:net` they stay resident (~4 MB in a daemon that onboarded
 * by pin). A module Worker terminated afterwards leaves more behind than it
 * frees (docs/benchmarks.md, "Session 8: tbot"). A child process gives all
 * of it back, for one Deno start-up at onboarding (and a cross-signed heal).
 *
 * I/O only: what the outcome means (a reset that may be retried, the error
 * codes, the HTTP answer) is read by ./trust.ts. This module imports nothing
 * but `node:tls` and `node:net`, so it runs alone, without the project's
 * configuration, and `deno task tbot-bundle` copies it beside the bundle.
 *
 * @module
 */
import type { TLSSocket } from "node:tls";

/** Longest wait for the unverified connection, ms. */
export const PROBE_TIMEOUT_MS = 15_000;
/** Largest answer accepted on the unverified connection, bytes. */
export const PROBE_MAX_BYTES = 256 * 1024;
/**
 * Largest leaf certificate accepted, bytes: Deno's TLS (rustls) takes no
 * handshake message over 64 KiB, the whole certificate chain included, and a
 * host certificate is under 1 KiB. Checked here as well, so the longest line
 * this program prints follows from its own limits (./trust.ts reads no more).
 */
export const PROBE_MAX_LEAF_BYTES = 64 * 1024;

/** What the probe saw, as printed (byte strings in base64). */
export type ProbeOutcome =
  | {
    /** The server's TLS leaf certificate, DER, base64. */
    leaf: string;
    /** The raw HTTP answer to `GET /v1/ca/host`, base64. */
    answer: string;
  }
  | {
    /**
     * Why there is no answer: `error` (the socket's error; `sent` says whether the
     * request was written), `ended` (closed during the handshake), `no_certificate`,
     * `too_large`, `timeout`.
     */
    failure: "error" | "ended" | "no_certificate" | "too_large" | "timeout";
    /** The socket's error message, for `error`. */
    message?: string;
    /** Whether the request had been written when it failed. */
    sent: boolean;
  };

/** Where the probe connects for `url`: the host without IPv6 brackets, the port 443 if unsaid. */
export function probeTarget(url: URL): { host: string; port: number } {
  return { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 443) };
}

/**
 * Connects to `baseUrl` without verifying it, sends `request` (the whole
 * HTTP/1.1 request text), and reports what came back.
 */
export async function probeUnverified(baseUrl: string, request: string): Promise<ProbeOutcome> {
  const url = new URL(baseUrl);
  const { host, port } = probeTarget(url);
  const [{ connect }, { isIP }] = await Promise.all([import("node:tls"), import("node:net")]);
  const socket: TLSSocket = connect({
    host,
    port,
    rejectUnauthorized: false,
    ALPNProtocols: ["http/1.1"],
    ...(isIP(host) ? {} : { servername: host }),
  });
  return await new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let leaf: Uint8Array | undefined;
    let done = false;
    const finish = (outcome: ProbeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => finish({ failure: "timeout", sent: leaf !== undefined }),
      PROBE_TIMEOUT_MS,
    );
    socket.on("secureConnect", () => {
      const raw = socket.getPeerCertificate(true)?.raw;
      if (!raw) return finish({ failure: "no_certificate", sent: false });
      if (raw.length > PROBE_MAX_LEAF_BYTES) return finish({ failure: "too_large", sent: false });
      leaf = new Uint8Array(raw);
      socket.write(request);
    });
    socket.on("data", (c: Uint8Array) => {
      size += c.length;
      if (size > PROBE_MAX_BYTES) return finish({ failure: "too_large", sent: true });
      chunks.push(new Uint8Array(c));
    });
    socket.on("error", (err: Error) => {
      // The request is written at secureConnect: before it (no leaf yet) nothing was sent.
      finish({ failure: "error", message: err.message, sent: leaf !== undefined });
    });
    socket.on("end", () => {
      // Deno's node:tls reports a reset during the handshake as an end, like a close.
      if (!leaf) return finish({ failure: "ended", sent: false });
      const answer = new Uint8Array(size);
      let off = 0;
      for (const c of chunks) {
        answer.set(c, off);
        off += c.length;
      }
      finish({ leaf: leaf.toBase64(), answer: answer.toBase64() });
    });
  });
}

if (import.meta.main) {
  const [baseUrl, request] = Deno.args;
  console.log(JSON.stringify(await probeUnverified(baseUrl, request)));
}
