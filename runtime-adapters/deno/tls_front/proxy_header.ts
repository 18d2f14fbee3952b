/**
 * Reading a balancer's PROXY protocol v2 header off an accepted connection,
 * byte-exact, so that the TLS ClientHello after it stays for the handshake.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { parseProxyV2, PROXY_V2_MAX_BYTES } from "../../../src/server/proxy_protocol.ts";
import { canonicalIp, formatHostPort } from "../../../src/util/host_port.ts";

/**
 * Reads exactly `n` bytes from `sock` and no more, so that what follows
 * (a TLS ClientHello) stays in the socket for the next reader.
 */
function readExactly(sock: Duplex, n: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const done = () => {
      sock.off("readable", attempt);
      sock.off("end", closed);
      sock.off("close", closed);
      sock.off("error", reject);
    };
    const closed = () => {
      done();
      reject(new Error("closed before a whole PROXY protocol header"));
    };
    function attempt() {
      const chunk: Uint8Array | null = sock.read(n);
      if (chunk === null) return;
      done();
      // At the end of the stream read() hands back what is left, which may be less.
      if (chunk.length < n) reject(new Error("closed before a whole PROXY protocol header"));
      else resolve(chunk);
    }
    sock.on("readable", attempt);
    sock.on("end", closed);
    sock.on("close", closed);
    sock.on("error", reject);
    attempt();
  });
}

/** The client a balancer's header names (its own address for a LOCAL header, a health check). */
export async function readProxyHeader(sock: Duplex, balancer: string): Promise<string> {
  const fixed = await readExactly(sock, 16);
  // Throws on anything that is not a v2 header; null means "the rest follows".
  const short = parseProxyV2(fixed);
  const length = short?.length ?? 16 + ((fixed[14] << 8) | fixed[15]);
  if (length > PROXY_V2_MAX_BYTES) throw new Error("PROXY protocol header too long");
  const header = short ??
    parseProxyV2(new Uint8Array([...fixed, ...await readExactly(sock, length - 16)]));
  if (!header) throw new Error("incomplete PROXY protocol header");
  return header.command === "proxy"
    ? formatHostPort(canonicalIp(header.source.host), header.source.port)
    : balancer;
}
