/**
 * The bot side of `POST /v1/bot/svid/jwt` (docs/protocol.md §8.4): a signed
 * request with the bot's current certificate, answered with a JWT-SVID.
 *
 * @module
 */
import { callApi } from "../../src/protocol/http_client.ts";
import type { RequestSigner } from "../../src/protocol/signed_request.ts";
import { JWT_SVID_PATH, JwtSvidResponse } from "../../src/protocol/workload_messages.ts";

/** A JWT-SVID request. */
export interface JwtSvidParams {
  /** `https://host:port` of the auth service. */
  baseUrl: string;
  /** The fetch to use (a service binding's, or the global one). */
  fetch: typeof fetch;
  /** The bot's certificate and key. */
  signer: RequestSigner;
  /** The `workload_identity` to issue from. */
  workloadIdentity: string;
  /** Audiences (1–16). */
  audiences: string[];
  /** Requested lifetime, seconds (the server clamps). */
  ttlSeconds?: number;
}

/** Asks the auth service for a JWT-SVID. Server errors keep their codes. */
export function fetchJwtSvid(p: JwtSvidParams): Promise<JwtSvidResponse> {
  return callApi(p, {
    method: "POST",
    path: JWT_SVID_PATH,
    body: {
      selector: { name: p.workloadIdentity },
      audiences: p.audiences,
      ...(p.ttlSeconds ? { ttl_seconds: p.ttlSeconds } : {}),
    },
    signer: p.signer,
    response: JwtSvidResponse,
    what: "JWT-SVID response",
  });
}
