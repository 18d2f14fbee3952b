/**
 * The console's one link to the auth service, bundled into `client.js` (see
 * scripts/build_console.ts): enrollment with a browser-held key and the admin
 * API client (src/cli/api_client.ts, the one tctl uses) signing every call
 * with that key. The key pair is generated non-extractable and kept in
 * IndexedDB as a `CryptoKey` object (the browser bot's storage); only its
 * public half and the certificate (public) ever leave it.
 *
 * @module
 */
import "./jitless.ts";
import * as z from "zod";
import { AdminApiClient } from "../../../src/cli/api_client.ts";
import { generateKeyPair } from "../../../src/crypto/keys.ts";
import { type ErrorCode, isKeyboundError, KeyboundError } from "../../../src/errors.ts";
import { AuditEventType } from "../../../src/protocol/audit.ts";
import { STATUS_PATH } from "../../../src/protocol/discovery.ts";
import { callApi } from "../../../src/protocol/http_client.ts";
import type { RequestSigner } from "../../../src/protocol/signed_request.ts";
import { EnrollResponse, WEB_ENROLL_PATH } from "../../../src/protocol/web.ts";
import { fromBase64, fromUtf8, toBase64 } from "../../../src/util/encoding.ts";
import { IndexedDbAgentStorage } from "../indexeddb_storage.ts";

export { isKeyboundError, KeyboundError };

/** Audit event types, for the audit page's filter. */
export const AUDIT_EVENT_TYPES: readonly string[] = AuditEventType.options;

const KEY_ID = "console-key";
const SESSION_FILE = "console-session.json";

/** A signed-in console: who, until when, and the API signing as it. */
export interface ConsoleSession {
  /** The admin API, every call signed by the browser's key. */
  api: ConsoleApi;
  /** `web-<id>`. */
  username: string;
  /** The browser id (what `tctl web rm` takes). */
  browserId: string;
  /** When the certificate (and the enrollment) ends. */
  expires: string;
}

const storage = new IndexedDbAgentStorage("keybound-console");

// Unbound: a browser's fetch throws "Illegal invocation" when called as a method of another object.
const pageFetch: typeof fetch = (input, init) => fetch(input, init);

function origin(): string {
  return (globalThis as unknown as { location: { origin: string } }).location.origin;
}

/**
 * `GET /v1/status` as the CA status page reads it: the three fields every
 * server sends, checked, and every other field kept as it came, so the page
 * shows fields (CA rotation phases, keys) newer than this console.
 */
const StatusForDisplay = z.looseObject({
  cluster_name: z.string(),
  server_version: z.string(),
  ca_pin: z.string(),
});

/** The admin API client tctl uses, plus the status as the console displays it. */
class ConsoleApi extends AdminApiClient {
  #signer: RequestSigner;

  constructor(signer: RequestSigner) {
    super({ baseUrl: origin(), fetch: pageFetch, signer });
    this.#signer = signer;
  }

  /** Every field of `GET /v1/status`. */
  statusFields(): Promise<z.infer<typeof StatusForDisplay>> {
    return callApi({ baseUrl: this.baseUrl, fetch: pageFetch }, {
      method: "GET",
      path: STATUS_PATH,
      signer: this.#signer,
      response: StatusForDisplay,
    });
  }
}

function sessionOf(saved: EnrollResponse, privateKey: CryptoKey): ConsoleSession {
  return {
    api: new ConsoleApi({ certDer: fromBase64(saved.cert), privateKey }),
    username: saved.username,
    browserId: saved.browser_id,
    expires: saved.expires,
  };
}

/**
 * Enrolls this browser with a one-time code: generates a non-extractable
 * P-256 key pair, registers its public key, stores the key and certificate.
 */
export async function enroll(code: string, userAgent?: string): Promise<ConsoleSession> {
  const keyPair = await generateKeyPair("ES256");
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keyPair.publicKey));
  const saved = await callApi({ baseUrl: origin(), fetch: pageFetch }, {
    method: "POST",
    path: WEB_ENROLL_PATH,
    body: {
      code,
      public_key: toBase64(spki),
      ...(userAgent ? { user_agent: userAgent.slice(0, 256) } : {}),
    },
    response: EnrollResponse,
  });
  await storage.keyObjects.put(KEY_ID, keyPair);
  await storage.write(SESSION_FILE, JSON.stringify(saved));
  return sessionOf(saved, keyPair.privateKey);
}

/** The stored session, or null when this browser was never enrolled (or signed out). */
export async function resume(): Promise<ConsoleSession | null> {
  const [keyPair, file] = await Promise.all([
    storage.keyObjects.get(KEY_ID),
    storage.read(SESSION_FILE),
  ]);
  if (!keyPair || !file) return null;
  const parsed = EnrollResponse.safeParse(JSON.parse(fromUtf8(file)));
  if (!parsed.success) return null;
  return sessionOf(parsed.data, keyPair.privateKey);
}

/** Forgets the key and certificate (the server's record stays until `tctl web rm` or expiry). */
export async function signOut(): Promise<void> {
  await storage.keyObjects.delete(KEY_ID);
  await storage.delete(SESSION_FILE);
}

/**
 * Refusals that mean this browser is not (or no longer) signed in;
 * CA_KEY_DROPPED: a finished user-CA rotation dropped the key that issued its certificate.
 */
const SIGNED_OUT: readonly ErrorCode[] = [
  "UNAUTHENTICATED",
  "BROWSER_REVOKED",
  "LOCKED",
  "CA_KEY_DROPPED",
];

/** True when an error means this browser is not (or no longer) signed in. */
export function isSignedOut(err: unknown): boolean {
  return SIGNED_OUT.some((code) => isKeyboundError(err, code));
}
