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
 * `defaultPort` is given. `what` names the flag or field in errors (their
 * message and `details.path`).
 */
export function parseHostPort(s: string, what: string, defaultPort?: number): HostPort {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(s) ??
    /^([A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(s);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!m || port === undefined || port > 65535) {
    throw new BadParameterError(
      `${what}: invalid address "${s}" (expected HOST:PORT, with IPv6 hosts in brackets)`,
      { details: { path: what } },
    );
  }
  return { host: m[1], port };
}

/** True if `s` is `HOST:PORT` (IPv6 hosts in brackets), as {@linkcode parseHostPort} reads it. */
export function isHostPort(s: string): boolean {
  try {
    parseHostPort(s, "address");
    return true;
  } catch {
    return false;
  }
}

/** A parsed server address. */
export interface ServerAddressParts {
  /** `https:` or `http:`. */
  scheme: "https:" | "http:";
  /** Host name or IP (IPv6 without brackets). */
  hostname: string;
  /** Port number. */
  port: number;
  /** Base URL without a trailing slash, e.g. `https://auth.example.com:3025`. */
  baseUrl: string;
}

/**
 * Parses a server address: `host[:port]`, `https://host[:port]` or
 * `http://host[:port]` (a trailing `/` allowed; no path, query or
 * credentials). Without a port: `defaultPort` if given, else the scheme's.
 * Throws `BadParameterError` naming `what` (message and `details.path`).
 *
 * @example
 * ```ts
 * import { parseServerAddress } from "./host_port.ts";
 * parseServerAddress("auth.example.com:3025").baseUrl; // "https://auth.example.com:3025"
 * ```
 */
export function parseServerAddress(
  text: string,
  what = "address",
  defaultPort?: number,
): ServerAddressParts {
  const bad = (why: string) =>
    new BadParameterError(`${what}: ${why}`, { details: { path: what } });
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw bad(`invalid address "${text}" (expected HOST:PORT, with IPv6 hosts in brackets)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw bad(`unsupported scheme "${url.protocol.slice(0, -1)}" (use https://)`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username) {
    throw bad("an address has no path, query or credentials");
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!hostname) throw bad("missing host");
  // URL forgets a port equal to the scheme's default, so read it from the text.
  const authority = withScheme.slice(withScheme.indexOf("//") + 2).split(/[/?#]/)[0];
  const written = authority.endsWith("]") ? undefined : /:(\d+)$/.exec(authority)?.[1];
  const port = written !== undefined
    ? Number(written)
    : defaultPort ?? (url.protocol === "https:" ? 443 : 80);
  return {
    scheme: url.protocol as "https:" | "http:",
    hostname,
    port,
    // URL drops a scheme's default port, as the agent has always sent it.
    baseUrl: `${url.protocol}//${
      new URL(`${url.protocol}//${formatHostPort(hostname, port)}`).host
    }`,
  };
}

/** Formats an address for a URL authority: IPv6 literals get brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * The one spelling of an IP address, for comparing addresses and recording
 * peers: IP literals as the URL parser canonicalises them (IPv6 lower case
 * with the longest zero run compressed, IPv4 dotted: `127.1` is `127.0.0.1`),
 * and an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, which a dual-stack
 * listener on `[::]` reports for every IPv4 peer) as the IPv4 address it
 * is, so an IPv4 client or balancer is one address however the service
 * listens. Brackets are dropped; a name, or text that is no address, comes
 * back as given.
 *
 * @example
 * ```ts
 * import { canonicalIp } from "./host_port.ts";
 * canonicalIp("::ffff:192.0.2.7"); // "192.0.2.7"
 * canonicalIp("[2001:DB8::0:1]"); // "2001:db8::1"
 * ```
 */
export function canonicalIp(host: string): string {
  const h = host.replace(/^\[(.*)\]$/, "$1");
  const v6 = h.includes(":");
  // Only IP-literal characters reach the URL parser: it would read a host out of a path or name.
  if (!(v6 ? /^[0-9A-Fa-f:.]+$/ : /^[0-9A-Fa-fXx.]+$/).test(h)) return host;
  let canonical: string;
  try {
    canonical = new URL(`http://${v6 ? `[${h}]` : h}/`).hostname;
  } catch {
    return host;
  }
  if (!v6) return /^\d+\.\d+\.\d+\.\d+$/.test(canonical) ? canonical : host;
  const bare = canonical.slice(1, -1);
  // The URL parser writes the mapped IPv4 part in hex: ::ffff:c000:207.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(bare);
  if (!mapped) return bare;
  const [high, low] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join(".");
}

/**
 * True if `host` (a name or IP literal, IPv6 with or without brackets) is
 * `localhost` or a loopback address: 127.0.0.0/8 or ::1, in any spelling
 * {@linkcode canonicalIp} reads (`0:0:0:0:0:0:0:1`, `127.1`,
 * `::ffff:127.0.0.1`). The one loopback rule of plain-HTTP and
 * listen-address checks.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./host_port.ts";
 * isLoopbackHost("[::1]"); // true
 * isLoopbackHost("example.com"); // false
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === "localhost") return true;
  const ip = canonicalIp(host);
  return ip === "::1" || /^127\.\d+\.\d+\.\d+$/.test(ip);
}
