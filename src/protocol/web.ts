/**
 * Wire messages of the fleet console (docs/protocol.md §11): enrollment codes
 * minted by an admin, a browser's enrollment with one, and the list of
 * enrolled browsers. Every other console call is an ordinary admin API call
 * (§5), signed by the browser's key (§2).
 *
 * @module
 */
import * as z from "zod";

/** `POST`: mint an enrollment code (admin identity file only, never a browser). */
export const WEB_ENROLLMENTS_PATH = "/v1/web/enrollments";
/** `POST`: enroll a browser with a code (unauthenticated, rate-limited). */
export const WEB_ENROLL_PATH = "/v1/web/enroll";
/** `GET`: enrolled browsers. */
export const WEB_BROWSERS_PATH = "/v1/web/browsers";
/** `GET`: who signed this request (the console's "signed in as"). */
export const WEB_WHOAMI_PATH = "/v1/web/whoami";

/** Path of one enrolled browser (`DELETE` revokes it). */
export function webBrowserPath(id: string): string {
  return `${WEB_BROWSERS_PATH}/${encodeURIComponent(id)}`;
}

/** Default and bounds of an enrollment code's lifetime, seconds. */
export const ENROLLMENT_TTL = { default: 600, min: 60, max: 3600 } as const;
/** Default and bounds of an enrolled browser's lifetime (its certificate's), seconds. */
export const BROWSER_SESSION_TTL = { default: 12 * 3600, min: 300, max: 7 * 24 * 3600 } as const;

/** A browser id: 16 lowercase hex characters. */
export const BrowserId = z.string().regex(/^[0-9a-f]{16}$/, "must be 16 lowercase hex characters");

/** An enrollment code: `<id>.<secret>` (16 hex, then 32 random bytes base64url). */
export const EnrollmentCode = z.string().regex(
  /^[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/,
  "must be the code tctl web enroll printed",
);

/** A browser's label: what the admin calls it in `tctl web ls`. */
export const BrowserLabel = z.string().regex(
  /^[A-Za-z0-9 _.@:+-]{1,64}$/,
  "must be 1-64 letters, digits, spaces or _ . @ : + -",
);

/** `POST /v1/web/enrollments` body. */
export const CreateEnrollmentRequest = z.strictObject({
  ttl_seconds: z.number().int().min(ENROLLMENT_TTL.min).max(ENROLLMENT_TTL.max)
    .default(ENROLLMENT_TTL.default),
  session_ttl_seconds: z.number().int().min(BROWSER_SESSION_TTL.min).max(BROWSER_SESSION_TTL.max)
    .default(BROWSER_SESSION_TTL.default),
  label: BrowserLabel.optional(),
});
/** An enrollment request. */
export type CreateEnrollmentRequest = z.input<typeof CreateEnrollmentRequest>;

/** `POST /v1/web/enrollments` answer: the one-time code (secret) and when it expires. */
export const CreateEnrollmentResponse = z.object({
  code: EnrollmentCode,
  browser_id: BrowserId,
  expires: z.string(),
});
/** A minted enrollment code. */
export type CreateEnrollmentResponse = z.infer<typeof CreateEnrollmentResponse>;

/** `POST /v1/web/enroll` body: the code and the browser's public key (SPKI, base64). */
export const EnrollRequest = z.strictObject({
  code: EnrollmentCode,
  public_key: z.string().min(40).max(200).regex(/^[A-Za-z0-9+/]+=*$/, "must be base64 SPKI"),
  user_agent: z.string().max(256).optional(),
});
/** An enrollment. */
export type EnrollRequest = z.infer<typeof EnrollRequest>;

/** `POST /v1/web/enroll` answer: the browser's console certificate (DER, base64). */
export const EnrollResponse = z.object({
  browser_id: BrowserId,
  username: z.string(),
  cert: z.string(),
  expires: z.string(),
});
/** An enrolled browser's credentials (public). */
export type EnrollResponse = z.infer<typeof EnrollResponse>;

/** An enrolled browser, as stored and as listed. */
export const WebBrowser = z.object({
  id: BrowserId,
  username: z.string(),
  label: z.string().optional(),
  enrolled_at: z.string(),
  expires: z.string(),
  enrolled_by: z.string(),
  remote_addr: z.string().optional(),
  user_agent: z.string().optional(),
  /** Hex SHA-256 of the console certificate. */
  cert_sha256: z.string(),
});
/** An enrolled browser. */
export type WebBrowser = z.infer<typeof WebBrowser>;

/** `GET /v1/web/browsers` answer. */
export const WebBrowserListResponse = z.object({ items: z.array(WebBrowser) });

/** `GET /v1/web/whoami` answer. */
export const WhoamiResponse = z.object({
  username: z.string(),
  roles: z.array(z.string()),
  browser_id: z.string().optional(),
  expires: z.string(),
});
/** Who signed a request. */
export type WhoamiResponse = z.infer<typeof WhoamiResponse>;
