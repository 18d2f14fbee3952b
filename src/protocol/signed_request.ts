/**
 * Client side of signed requests (docs/protocol.md §2): the
 * `Authorization: Keybound <JWS>` header by which a holder of a user-CA
 * certificate proves possession of its private key on every call.
 *
 * @module
 */
import { CompactSign } from "jose";
import * as z from "zod";
import { algOf } from "../crypto/keys.ts";
import { randomHex, sha256 } from "../crypto/random.ts";
import { toBase64, toBase64Url, utf8 } from "../util/encoding.ts";

/** `typ` of the protected header of a signed request. */
export const SIGNED_REQUEST_TYP = "keybound-req+jwt";

/** Authorization scheme name. */
export const SIGNED_REQUEST_SCHEME = "Keybound";

/** JWS algorithms of signed requests and challenge solutions (the `balanced-v1` suite). */
export const SIGNATURE_ALGORITHMS = ["EdDSA", "ES256"] as const;

/**
 * Claims of a signed request (docs/protocol.md §2). Part of the public API,
 * so an interface (JSR's no-slow-types rule); {@linkcode SignedRequestClaimsSchema}
 * is annotated with it so the type checker keeps the two in step.
 */
export interface SignedRequestClaims {
  /** HTTP method, upper case. */
  htm: string;
  /** Request path without scheme, host or query. */
  htu: string;
  /** Client time, integer seconds. */
  iat: number;
  /** 16 random bytes, hex. */
  jti: string;
  /** base64url(SHA-256(body)). */
  bsh: string;
  /** base64url(SHA-256(challenge)) on join `continue` requests answering a challenge. */
  chash?: string;
}

/** Validates {@linkcode SignedRequestClaims} (the server checks every signed request with it). */
export const SignedRequestClaimsSchema: z.ZodType<SignedRequestClaims> = z.object({
  htm: z.string(),
  htu: z.string(),
  iat: z.number().int(),
  jti: z.string().regex(/^[0-9a-f]{32}$/, "jti must be 32 lowercase hex characters"),
  bsh: z.string(),
  chash: z.string().optional(),
});

/** Protected header of a signed request. */
export const SignedRequestHeader = z.object({
  alg: z.enum(SIGNATURE_ALGORITHMS),
  typ: z.literal(SIGNED_REQUEST_TYP),
  x5c: z.array(z.string()).length(1),
});

/** The credential that signs: a user-CA certificate and its private key. */
export interface RequestSigner {
  /** The client certificate, DER. */
  certDer: Uint8Array;
  /** The certificate's private key (Ed25519 or ECDSA P-256). */
  privateKey: CryptoKey;
}

/** The request being signed. */
export interface RequestToSign {
  /** HTTP method (any case). */
  method: string;
  /** Request path; a query string or fragment, if present, is not signed. */
  path: string;
  /** Body bytes or text (UTF-8); omit for no body. */
  body?: Uint8Array | string;
  /** Challenge hash, see {@linkcode challengeHash}. */
  chash?: string;
  /** Signing time; defaults to now. */
  now?: Date;
}

/** base64url(SHA-256(body)); the empty body hashes the empty string. */
export async function bodyHash(body: Uint8Array | string = ""): Promise<string> {
  return toBase64Url(await sha256(body));
}

/** base64url(SHA-256(UTF-8 of the exact challenge text)): the `chash` claim. */
export async function challengeHash(challenge: string): Promise<string> {
  return toBase64Url(await sha256(challenge));
}

/**
 * The path as `htu` carries it: the percent-encoded pathname a URL parser
 * produces, so client and server compare the same spelling.
 */
export function canonicalRequestPath(path: string): string {
  return new URL(path, "http://keybound.invalid").pathname;
}

/**
 * Returns the `Authorization` header value (`Keybound <compact JWS>`) for `request`.
 *
 * @example Sign a request with an identity file
 * ```ts ignore
 * import { parseIdentityFile, signRequest } from "@keybound/keybound";
 *
 * declare const identityFileText: string; // the contents of admin-identity.pem
 * const id = await parseIdentityFile(identityFileText);
 * const body = JSON.stringify({ hello: "world" });
 * const authorization = await signRequest(id, { method: "POST", path: "/v1/bot/heartbeat", body });
 * await fetch("https://auth.example.com:3025/v1/bot/heartbeat", {
 *   method: "POST",
 *   headers: { authorization, "content-type": "application/json" },
 *   body,
 * });
 * ```
 */
export async function signRequest(signer: RequestSigner, request: RequestToSign): Promise<string> {
  const claims: SignedRequestClaims = {
    htm: request.method.toUpperCase(),
    htu: canonicalRequestPath(request.path),
    iat: Math.floor((request.now ?? new Date()).getTime() / 1000),
    jti: randomHex(16),
    bsh: await bodyHash(request.body),
    ...(request.chash === undefined ? {} : { chash: request.chash }),
  };
  const jws = await new CompactSign(utf8(JSON.stringify(claims)))
    .setProtectedHeader({
      alg: algOf(signer.privateKey),
      typ: SIGNED_REQUEST_TYP,
      x5c: [toBase64(signer.certDer)],
    })
    .sign(signer.privateKey);
  return `${SIGNED_REQUEST_SCHEME} ${jws}`;
}
