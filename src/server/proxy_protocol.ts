/**
 * PROXY protocol version 2 (HAProxy's `send-proxy-v2`): the binary header a
 * TCP load balancer sends before the client's bytes, naming the client's
 * real address. Accepted only from configured balancer addresses: anyone
 * else could claim any source address.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";

/** The 12-byte signature every v2 header starts with. */
export const PROXY_V2_SIGNATURE: Uint8Array = Uint8Array.from([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
/** Largest header accepted (fixed part + addresses + TLVs we ignore). */
export const PROXY_V2_MAX_BYTES = 16 + 512;

/** A parsed header. */
export type ProxyHeader =
  /** `PROXY` over TCP: the client's address and port. */
  | { command: "proxy"; source: { host: string; port: number }; length: number }
  /** `LOCAL` (the balancer's own health check) or an unsupported family: use the peer. */
  | { command: "local"; length: number };

function ipv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  // Longest run of zero groups collapses to "::" (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/**
 * Parses a v2 header at the start of `buf`. Returns null while more bytes
 * are needed; throws `Error` on anything that is not a valid v2 header.
 */
export function parseProxyV2(buf: Uint8Array): ProxyHeader | null {
  const have = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  for (let i = 0; i < have; i++) {
    if (buf[i] !== PROXY_V2_SIGNATURE[i]) {
      throw new BadParameterError("no PROXY protocol v2 signature");
    }
  }
  if (buf.length < 16) return null;
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) {
    throw new BadParameterError(`PROXY protocol version ${verCmd >> 4} is not 2`);
  }
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new BadParameterError(`unknown PROXY protocol command ${cmd}`);
  const len = (buf[14] << 8) | buf[15];
  const length = 16 + len;
  if (length > PROXY_V2_MAX_BYTES) throw new BadParameterError("PROXY protocol header too long");
  if (buf.length < length) return null;
  if (cmd === 0) return { command: "local", length };
  const famProto = buf[13];
  const a = buf.subarray(16, length);
  if (famProto === 0x11 && len >= 12) {
    const port = (a[8] << 8) | a[9];
    return { command: "proxy", source: { host: [...a.subarray(0, 4)].join("."), port }, length };
  }
  if (famProto === 0x21 && len >= 36) {
    const port = (a[32] << 8) | a[33];
    return { command: "proxy", source: { host: ipv6(a.subarray(0, 16)), port }, length };
  }
  // UNSPEC, UDP or UNIX: nothing usable as a client address.
  return { command: "local", length };
}
