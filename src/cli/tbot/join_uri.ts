/**
 * Teleport's joining URI, one string for the address, join method, token and
 * (bound keypair) registration secret:
 * `tbot+proxy+bound-keypair://TOKEN[:SECRET]@host:port` (`auth` in place of
 * `proxy` for an auth service address).
 *
 * @module
 */
import { UsageError } from "../flags/mod.ts";

/** A joining URI, parsed. */
export interface JoinUri {
  /** Which address field the host fills. */
  addressField: "proxy_server" | "auth_server";
  /** `host:port`. */
  address: string;
  /** The join token's name. */
  token: string;
  /** The registration secret, when the URI carries one. */
  registrationSecret?: string;
}

/**
 * Parses `--join-uri`. Throws {@linkcode UsageError} naming the flag and never
 * echoing the URI (it may hold the registration secret).
 *
 * @example
 * ```ts
 * import { parseJoinUri } from "./join_uri.ts";
 * parseJoinUri("tbot+proxy+bound-keypair://bot-token:s3cret@auth.example.com:443").token; // "bot-token"
 * ```
 */
export function parseJoinUri(text: string): JoinUri {
  const bad = (why: string) =>
    new UsageError(
      `--join-uri: ${why} (expected tbot+proxy+bound-keypair://TOKEN[:SECRET]@host:port)`,
    );
  const m = /^tbot\+(proxy|auth)\+([a-z0-9-]+):\/\/([^@/]*)@([^/?#]+)\/?$/.exec(text);
  if (!m) throw bad("not a joining URI");
  const [, kind, method, userinfo, hostPort] = m;
  if (method !== "bound-keypair") {
    throw bad(`unsupported join method "${method}" (Keybound supports: bound-keypair)`);
  }
  let token: string, secret: string;
  try {
    const url = new URL(`https://${userinfo}@${hostPort}`);
    token = decodeURIComponent(url.username);
    secret = decodeURIComponent(url.password);
  } catch {
    throw bad("not a valid URI");
  }
  // Checked on the text: URL drops a port that is its scheme's default (443).
  if (!/:\d+$/.test(hostPort)) throw bad("the address needs a port");
  if (!token) throw bad("no token name");
  return {
    addressField: kind === "proxy" ? "proxy_server" : "auth_server",
    address: hostPort,
    token,
    ...(secret ? { registrationSecret: secret } : {}),
  };
}
