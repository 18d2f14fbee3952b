/**
 * Public trust material for workload identities: the JWKS of the JWT CA
 * (`/.well-known/jwks.json`) and the SPIFFE trust bundle (SPIFFE Trust
 * Domain and Bundle spec §4: a JWK Set whose keys carry `use: x509-svid`
 * with the CA certificate in `x5c`, or `use: jwt-svid` with a `kid`).
 *
 * @module
 */
import { algOf } from "../../crypto/keys.ts";
import { toBase64 } from "../../util/encoding.ts";
import type { CertAuthority, ServerContext } from "../context.ts";

/** A public JWK. */
export interface PublicJwk {
  /** `EC` or `OKP`. */
  kty: string;
  /** `P-256` or `Ed25519`. */
  crv: string;
  /** Public x coordinate (or Ed25519 key), base64url. */
  x: string;
  /** Public y coordinate (EC only), base64url. */
  y?: string;
  /** Key ID. */
  kid?: string;
  /** `ES256` or `EdDSA`. */
  alg?: string;
  /** `sig`, `x509-svid` or `jwt-svid`. */
  use: string;
  /** Certificate chain, standard base64 DER (x509-svid keys). */
  x5c?: string[];
}

/** How often bundle consumers should re-fetch, seconds (`spiffe_refresh_hint`). */
export const BUNDLE_REFRESH_HINT_S = 300;

async function publicJwk(key: CryptoKey): Promise<Pick<PublicJwk, "kty" | "crv" | "x" | "y">> {
  // Only the public members are copied: the export also carries key_ops and ext.
  const jwk = await crypto.subtle.exportKey("jwk", key);
  return {
    kty: jwk.kty!,
    crv: jwk.crv!,
    x: jwk.x!,
    ...(jwk.y ? { y: jwk.y } : {}),
  };
}

/** Every trusted JWT key of `ca`, the signing key first, with `use` set to `use`. */
export async function jwtKeySet(
  ca: CertAuthority,
  use: "sig" | "jwt-svid",
): Promise<PublicJwk[]> {
  return await Promise.all((ca.jwt ?? []).map(async (k) => ({
    ...await publicJwk(k.keyPair.publicKey),
    kid: k.kid,
    alg: algOf(k.keyPair.publicKey),
    use,
  })));
}

/** The JWKS served at `/.well-known/jwks.json`: every trusted JWT CA key, signing key first. */
export async function jwks(ctx: ServerContext): Promise<{ keys: PublicJwk[] }> {
  return { keys: await jwtKeySet(ctx.cas.jwt, "sig") };
}

/**
 * The SPIFFE bundle of the cluster's trust domain: every trusted SPIFFE CA
 * certificate and JWT key, signing keys first. The sequence number is the
 * time (seconds) of the last phase change of either CA, so it grows with
 * every change of the bundle.
 */
export async function spiffeBundle(ctx: ServerContext): Promise<{
  keys: PublicJwk[];
  spiffe_sequence: number;
  spiffe_refresh_hint: number;
}> {
  const x509 = await Promise.all(ctx.cas.spiffe.trustedTls.map(async (ca): Promise<PublicJwk> => ({
    ...await publicJwk(ca.keyPair.publicKey),
    use: "x509-svid",
    x5c: [toBase64(ca.certDer)],
  })));
  const changed = [ctx.cas.spiffe, ctx.cas.jwt]
    .map((ca) => Date.parse(ca.rotation.phase_changed_at ?? "") / 1000)
    .filter((t) => Number.isFinite(t));
  return {
    keys: [...x509, ...await jwtKeySet(ctx.cas.jwt, "jwt-svid")],
    spiffe_sequence: changed.length ? Math.floor(Math.max(...changed)) : 1,
    spiffe_refresh_hint: BUNDLE_REFRESH_HINT_S,
  };
}
