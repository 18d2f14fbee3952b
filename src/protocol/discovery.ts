/**
 * Wire messages of discovery (docs/protocol.md §3) and of the admin status
 * call (§5): what `/v1/ping`, `/v1/ca/{host|user}` and `/v1/status` answer.
 * The server builds its answers with these types and clients validate with
 * the schemas.
 *
 * @module
 */
import * as z from "zod";
import { CaStatus } from "./ca_rotation.ts";

/** Wire protocol version `/v1/ping` reports. */
export const PROTOCOL_VERSION = 1;

/** Path of the unauthenticated ping. */
export const PING_PATH = "/v1/ping";
/** Path of the public host CA. */
export const HOST_CA_PATH = "/v1/ca/host";
/** Path of the admin status call. */
export const STATUS_PATH = "/v1/status";

/** Path of the public CA of `type`. */
export function caPath(type: "host" | "user"): string {
  return `/v1/ca/${type}`;
}

/** `GET /v1/ping`. */
export const PingResponse = z.object({
  cluster_name: z.string(),
  server_version: z.string(),
  protocol_version: z.number().int(),
  signature_algorithm_suite: z.string(),
  join_methods: z.array(z.string()),
  ca_pin: z.string(),
});
/** A ping answer. */
export type PingResponse = z.infer<typeof PingResponse>;

/**
 * `GET /v1/ca/{host|user}`: every trusted certificate and SSH key of the CA,
 * the signing key first. `cross_signed` (host CA only, after a rotation):
 * certificates of a newer host CA key issued by the key it replaced, which
 * let a bot that slept through the rotation move its trust (docs/protocol.md §10).
 */
export const CaResponse = z.object({
  tls_ca_certs: z.array(z.string()),
  ssh_ca_keys: z.array(z.string()),
  cross_signed: z.array(z.string()).optional(),
});
/** A CA answer. */
export type CaResponse = z.infer<typeof CaResponse>;

/**
 * `GET /v1/status`: cluster name, version and CA pins (`ca_pin`: the host CA
 * key that signs the auth service's certificate now, what a new bot pins),
 * and each CA's rotation status (§10).
 */
export const ClusterStatus = z.object({
  cluster_name: z.string(),
  server_version: z.string(),
  ca_pin: z.string(),
  ca_pins: z.object({ host: z.string().optional(), user: z.string().optional() }).optional(),
  cas: z.array(CaStatus).optional(),
});
/** A status answer. */
export type ClusterStatus = z.infer<typeof ClusterStatus>;
