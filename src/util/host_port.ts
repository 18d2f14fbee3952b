/**
 * `HOST:PORT` addresses as flags and config files spell them, with IPv6 hosts
 * in brackets (`[::1]:3025`).
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";

/** A parsed address. */
export interface HostPort {
  /** Host name or IP literal, without brackets. */
  host: string;
  /** TCP port, 0-65535. */
  port: number;
}

/**
 * Parses `HOST:PORT` or `[IPV6]:PORT`; a bare host is accepted when
 * `defaultPort` is given. `what` names the flag or field in errors.
 */
export function parseHostPort(s: string, what: string, defaultPort?: number): HostPort {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(s) ??
    /^([^:\[\]\s]+)(?::(\d{1,5}))?$/.exec(s);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!m || port === undefined || port > 65535) {
    throw new BadParameterError(
      `${what}: invalid address "${s}" (expected HOST:PORT, with IPv6 hosts in brackets)`,
    );
  }
  return { host: m[1], port };
}

/** Formats an address for a URL authority: IPv6 literals get brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * True if `host` (a name or IP literal, IPv6 with or without brackets) is
 * `localhost` or a loopback address: 127.0.0.0/8 or ::1, in any spelling the
 * URL parser normalises (`0:0:0:0:0:0:0:1`, `127.1`). The one loopback rule
 * of plain-HTTP and listen-address checks.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./host_port.ts";
 * isLoopbackHost("[::1]"); // true
 * isLoopbackHost("example.com"); // false
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  if (!/^[0-9a-z.:-]+$/.test(h)) return false;
  let canonical: string;
  try {
    canonical = new URL(`http://${h.includes(":") ? `[${h}]` : h}/`).hostname;
  } catch {
    return false;
  }
  return canonical === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(canonical);
}
