/**
 * The bot side of `POST /v1/bot/svid/jwt` (docs/protocol.md §8.4): a signed
 * request with the bot's current certificate, answered with a JWT-SVID.
 *
 * @module
 */
import { readAnswer, sendRequest } from "../../src/protocol/http_client.ts";
import { type RequestSigner, signRequest } from "../../src/protocol/signed_request.ts";
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
export async function fetchJwtSvid(p: JwtSvidParams): Promise<JwtSvidResponse> {
  const url = new URL(JWT_SVID_PATH, p.baseUrl);
  const body = JSON.stringify({
    selector: { name: p.workloadIdentity },
    audiences: p.audiences,
    ...(p.ttlSeconds ? { ttl_seconds: p.ttlSeconds } : {}),
  });
  const res = await sendRequest(p.fetch, url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: await signRequest(p.signer, { method: "POST", path: url.pathname, body }),
    },
    body,
  });
  return await readAnswer(res, JwtSvidResponse, "JWT-SVID response");
}
