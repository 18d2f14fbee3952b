/**
 * Teleport's joining URI, one string for the address, join method, token and
 * (bound keypair) registration secret:
 * `tbot+proxy+bound-keypair://TOKEN[:SECRET]@host:port` (`auth` in place of
 * `proxy` for an auth service address). Read from `join_uri:` in tbot.yaml,
 * `--join-uri` or `TBOT_JOIN_URI`.
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";

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

/** The shape, for error messages. */
export const JOIN_URI_SHAPE = "tbot+proxy+bound-keypair://TOKEN[:SECRET]@host:port";

const JOIN_URI = /^tbot\+(proxy|auth)\+([a-z0-9-]+):\/\/([^@/]*)@([^/?#]+)\/?$/;

/**
 * Parses a joining URI. Throws {@linkcode ConfigError} saying what is wrong,
 * never echoing the URI (it may hold the registration secret); the caller
 * names where it came from.
 *
 * @example
 * ```ts
 * import { parseJoinUri } from "./join_uri.ts";
 * parseJoinUri("tbot+proxy+bound-keypair://bot-token:s3cret@auth.example.com:443").token; // "bot-token"
 * ```
 */
export function parseJoinUri(text: string): JoinUri {
  const bad = (why: string) => new ConfigError(`${why} (expected ${JOIN_URI_SHAPE})`);
  const m = JOIN_URI.exec(text);
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

/**
 * The URI without its registration secret (what `tbot configure` writes when
 * the secret comes from elsewhere). `text` must parse.
 *
 * @example
 * ```ts
 * import { joinUriWithoutSecret } from "./join_uri.ts";
 * joinUriWithoutSecret("tbot+auth+bound-keypair://t:s@h:1"); // "tbot+auth+bound-keypair://t@h:1"
 * ```
 */
export function joinUriWithoutSecret(text: string): string {
  const [, kind, method, userinfo, hostPort] = JOIN_URI.exec(text)!;
  return `tbot+${kind}+${method}://${userinfo.split(":")[0]}@${hostPort}`;
}
