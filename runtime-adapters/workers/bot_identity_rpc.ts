/**
 * What the `BotIdentity` Durable Object answers over RPC. Results are plain
 * data (errors included, as `{ok: false, error}`), because RPC keeps an
 * error's message but not its Keybound code.
 *
 * @module
 */
import type { ErrorCode } from "../../src/errors.ts";

/** A failure as data. */
export interface RpcError {
  /** Stable Keybound error code. */
  code: ErrorCode;
  /** What happened and, for refusals, what an admin can do. */
  message: string;
}

/** A result or a failure. */
export type RpcResult<T> = ({ ok: true } & T) | { ok: false; error: RpcError };

/** The bot's state as `/readyz` reports it. */
export interface BotReadiness {
  /** `healthy` once an identity is held and the last renewal worked. */
  status: "initializing" | "healthy" | "unhealthy";
  /** Why it is not healthy. */
  reason?: string;
  /** Bot name, once joined. */
  bot_name?: string;
  /** Bot instance id, once joined. */
  bot_instance_id?: string;
  /** Generation of the current certificate. */
  generation?: number;
  /** Expiry of the current certificate, RFC 3339. */
  expires?: string;
  /** Time of the last successful renewal, RFC 3339. */
  last_renewal?: string;
  /** When the alarm fires next, RFC 3339, or null when none is armed. */
  next_renewal: string | null;
}

/** A JWT-SVID. */
export interface JwtSvid {
  /** The SPIFFE ID. */
  spiffe_id: string;
  /** The compact JWS. */
  jwt: string;
  /** Expiry, RFC 3339. */
  expires: string;
}

/** The bot's X.509 identity. */
export interface X509Credentials {
  /** Client certificate, PEM. */
  tls_cert: string;
  /** User CA certificates, PEM. */
  tls_ca_certs: string[];
  /** OpenSSH user certificate. */
  ssh_cert: string;
  /** Expiry, RFC 3339. */
  expires: string;
  /** The certificate's private key, PKCS#8 PEM; present only when asked for. */
  private_key?: string;
}

/** The RPC methods of `BotIdentity`. */
export interface BotIdentityRpc {
  /** Joins (or keeps) the identity and makes sure the renewal alarm is armed. */
  start(): Promise<BotReadiness>;
  /** Renews now (joins already running are shared, never doubled). */
  renew(): Promise<RpcResult<{ generation: number; bot_instance_id: string }>>;
  /** A JWT-SVID for `audience`. */
  jwtSvid(audience: string): Promise<RpcResult<{ svid: JwtSvid }>>;
  /** The X.509 identity; the private key only with `includePrivateKey`. */
  x509(includePrivateKey?: boolean): Promise<RpcResult<{ credentials: X509Credentials }>>;
  /** Current state. */
  readiness(): Promise<BotReadiness>;
}
