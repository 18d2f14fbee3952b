/**
 * The source a request is charged to, for rate limits and failed-join
 * aggregation: the client's IP address without the port (every new
 * connection has a new port), and for IPv6 its /64 network, since one host
 * is commonly given a whole /64.
 *
 * The HTTP adapter supplies `remoteAddr` (the socket peer, `cf-connecting-ip`
 * on Workers, or the PROXY-protocol source behind a load balancer); nothing
 * here trusts a header.
 *
 * @module
 */
import { canonicalIp } from "../../util/host_port.ts";

/** Source of requests whose peer address the adapter did not report. */
export const UNKNOWN_SOURCE = "unknown";

/**
 * The source of `remoteAddr` (`IP`, `IP:PORT`, `[IPV6]:PORT` or bare IPv6).
 *
 * @example
 * ```ts
 * import { sourceAddress } from "./source.ts";
 * sourceAddress("203.0.113.7:51234"); // "203.0.113.7"
 * sourceAddress("[2001:db8:1:2:3:4:5:6]:443"); // "2001:db8:1:2::/64"
 * ```
 */
export function sourceAddress(remoteAddr: string | undefined): string {
  if (!remoteAddr) return UNKNOWN_SOURCE;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?$/.exec(remoteAddr);
  if (v4) return v4[1];
  const host = /^\[([^\]]+)\](?::\d+)?$/.exec(remoteAddr)?.[1] ?? remoteAddr;
  if (!host.includes(":")) return remoteAddr;
  const ip = canonicalIp(host);
  // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 host.
  if (!ip.includes(":")) return ip;
  return ipv6Network(ip) ?? remoteAddr;
}

/** `a:b:c:d::/64` for an IPv6 literal, or null if `ip` is not one. */
function ipv6Network(ip: string): string | null {
  const bare = ip.split("%")[0].toLowerCase();
  if (!/^[0-9a-f:.]+$/.test(bare) || !bare.includes(":")) return null;
  const groups = expandIpv6(bare);
  if (!groups) return null;
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

function expandIpv6(ip: string): number[] | null {
  let text = ip;
  const tail = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (tail) {
    const b = tail.slice(1).map(Number);
    if (b.some((x) => x > 255)) return null;
    text = text.slice(0, tail.index) +
      `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === "" ? [] : s.split(":"));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return all.map((g) => parseInt(g, 16));
}
