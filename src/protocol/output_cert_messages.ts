/**
 * Wire messages of `POST /v1/bot/identity-cert` (docs/protocol.md §8.7):
 * certificates for a tbot `identity` output with its own key and lifetime.
 * Server and agent both validate with these schemas.
 *
 * @module
 */
import * as z from "zod";
import { TtlSeconds } from "./workload_messages.ts";

/** `POST`: identity output certificates. */
export const IDENTITY_CERT_PATH = "/v1/bot/identity-cert";

const MAX_KEY_TEXT = 4096;

/** `POST /v1/bot/identity-cert` request: one subject key in both encodings. */
export const IdentityCertRequest = z.strictObject({
  public_tls_key: z.string().min(1).max(MAX_KEY_TEXT),
  public_ssh_key: z.string().min(1).max(MAX_KEY_TEXT),
  ttl_seconds: TtlSeconds.optional(),
});
/** An identity output certificate request. */
export type IdentityCertRequest = z.infer<typeof IdentityCertRequest>;

/** `POST /v1/bot/identity-cert` response. */
export const IdentityCertResponse = z.object({
  certificates: z.object({
    tls_cert: z.string().min(1),
    tls_ca_certs: z.array(z.string().min(1)).min(1),
    ssh_cert: z.string().min(1),
    ssh_ca_keys: z.array(z.string().min(1)).min(1),
  }),
  expires: z.string(),
});
/** An identity output certificate response. */
export type IdentityCertResponse = z.infer<typeof IdentityCertResponse>;
