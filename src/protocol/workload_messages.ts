/**
 * Wire messages of the host-certificate and workload-identity endpoints
 * (docs/protocol.md §8). Server and agent both validate with these schemas.
 *
 * @module
 */
import * as z from "zod";
import { parseIpAddress } from "../pki/der.ts";

/** `POST`: an OpenSSH host certificate. */
export const SSH_HOST_CERT_PATH = "/v1/bot/ssh-host-cert";
/** `POST`: an X.509 SVID. */
export const X509_SVID_PATH = "/v1/bot/svid/x509";
/** `POST`: a JWT-SVID. */
export const JWT_SVID_PATH = "/v1/bot/svid/jwt";
/** `GET` (public): the JWT CA's keys. */
export const JWKS_PATH = "/.well-known/jwks.json";
/** `GET` (public): the SPIFFE trust bundle. */
export const SPIFFE_BUNDLE_PATH = "/v1/spiffe/bundle";

const MAX_KEY_TEXT = 4096;
/** Longest lifetime a request may name (the server clamps further). */
const MAX_TTL_SECONDS = 366 * 24 * 3600;

const DNS_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOSTNAME_RE = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

function isIpAddress(s: string): boolean {
  try {
    parseIpAddress(s);
    return true;
  } catch {
    return false;
  }
}

/** True for a DNS host name or an IPv4 / IPv6 literal: what a host certificate may name. */
export function isHostPrincipal(s: string): boolean {
  return s.length <= 253 && (HOSTNAME_RE.test(s) || isIpAddress(s));
}

/** A host certificate principal. */
export const HostPrincipal = z.string().refine(isHostPrincipal, {
  message: "must be a host name (letters, digits, - and .) or an IP address",
});

/** Requested lifetime, seconds. */
export const TtlSeconds = z.number().int().positive().max(MAX_TTL_SECONDS);

/** Which `workload_identity` to issue from. */
export const WorkloadIdentitySelector = z.strictObject({
  name: z.string({ error: "required: the workload_identity name" }).min(1).max(253),
});

/** `POST /v1/bot/ssh-host-cert` request. */
export const SshHostCertRequest = z.strictObject({
  public_key: z.string().min(1).max(MAX_KEY_TEXT),
  principals: z.array(HostPrincipal).min(1, "at least one principal is required").max(64),
  ttl_seconds: TtlSeconds.optional(),
});
/** An SSH host certificate request. */
export type SshHostCertRequest = z.infer<typeof SshHostCertRequest>;

/** `POST /v1/bot/ssh-host-cert` response. */
export const SshHostCertResponse = z.object({
  ssh_cert: z.string().min(1),
  user_ca_keys: z.array(z.string().min(1)).min(1),
  expires: z.string(),
});
/** An SSH host certificate response. */
export type SshHostCertResponse = z.infer<typeof SshHostCertResponse>;

/** `POST /v1/bot/svid/x509` request. */
export const X509SvidRequest = z.strictObject({
  selector: WorkloadIdentitySelector,
  public_key: z.string().min(1).max(MAX_KEY_TEXT),
  ttl_seconds: TtlSeconds.optional(),
});
/** An X.509 SVID request. */
export type X509SvidRequest = z.infer<typeof X509SvidRequest>;

/** `POST /v1/bot/svid/x509` response. */
export const X509SvidResponse = z.object({
  spiffe_id: z.string().startsWith("spiffe://"),
  svid: z.string().min(1),
  chain: z.array(z.string()).default([]),
  bundle: z.array(z.string().min(1)).min(1),
  expires: z.string(),
});
/** An X.509 SVID response. */
export type X509SvidResponse = z.infer<typeof X509SvidResponse>;

/** `POST /v1/bot/svid/jwt` request. */
export const JwtSvidRequest = z.strictObject({
  selector: WorkloadIdentitySelector,
  audiences: z.array(z.string().min(1).max(1024)).min(1, "at least one audience is required")
    .max(16),
  ttl_seconds: TtlSeconds.optional(),
});
/** A JWT-SVID request. */
export type JwtSvidRequest = z.infer<typeof JwtSvidRequest>;

/** `POST /v1/bot/svid/jwt` response. */
export const JwtSvidResponse = z.object({
  spiffe_id: z.string().startsWith("spiffe://"),
  jwt: z.string().min(1),
  expires: z.string(),
});
/** A JWT-SVID response. */
export type JwtSvidResponse = z.infer<typeof JwtSvidResponse>;
