/**
 * Console enrollment (docs/protocol.md §11, docs/security.md "Console
 * enrollment"): an admin mints a one-time code; a browser presents it with
 * the public half of a key it generated as non-extractable, and gets a
 * certificate from the user CA for that key. The code is stored only as a
 * hash, compared in constant time, used once (one compare-and-swap deletes
 * it and writes the browser's record) and expires.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import { importSpki } from "../../crypto/keys.ts";
import { randomBytes, randomHex, sha256, timingSafeEqual } from "../../crypto/random.ts";
import { issueCertificate, parseCertificate, randomSerial } from "../../pki/mod.ts";
import { browserSubject, browserUserName } from "../../protocol/subject.ts";
import type {
  CreateEnrollmentResponse,
  EnrollRequest,
  EnrollResponse,
  WebBrowser,
} from "../../protocol/web.ts";
import * as z from "zod";
import { fromBase64, fromHex, toBase64, toBase64Url, toHex } from "../../util/encoding.ts";
import { auditMutations } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import { CA_REVISION_KEY, webBrowserKey, webEnrollmentKey } from "../keys.ts";
import { refreshCas } from "../rotation/cache.ts";
import { CERT_BACKDATE_MS } from "../join/certs.ts";

/** An unused code as stored: its secret only as a SHA-256. */
const StoredEnrollment = z.object({
  id: z.string(),
  secret_sha256: z.string(),
  expires: z.string(),
  session_ttl_seconds: z.number().int(),
  created_by: z.string(),
  label: z.string().optional(),
});

/** What minting a code needs. */
export interface MintOptions {
  /** Code lifetime, seconds. */
  ttlSeconds: number;
  /** Lifetime of the browser's certificate and record, seconds. */
  sessionTtlSeconds: number;
  /** The admin's name for the browser. */
  label?: string;
  /** Who minted it and from where (audited). */
  actor: { user: string; remoteAddr?: string };
}

/** Mints a one-time enrollment code; the secret leaves only in the answer. */
export async function mintEnrollment(
  ctx: ServerContext,
  o: MintOptions,
): Promise<CreateEnrollmentResponse> {
  const now = ctx.now();
  const id = randomHex(8);
  const secret = toBase64Url(randomBytes(32));
  const expiresAt = now.getTime() + o.ttlSeconds * 1000;
  const expires = new Date(expiresAt).toISOString();
  const stored: z.infer<typeof StoredEnrollment> = {
    id,
    secret_sha256: toHex(await sha256(secret)),
    expires,
    session_ttl_seconds: o.sessionTtlSeconds,
    created_by: o.actor.user,
    ...(o.label === undefined ? {} : { label: o.label }),
  };
  const key = webEnrollmentKey(id);
  const r = await ctx.backend.commit({
    checks: [{ key, version: null }, { key: webBrowserKey(id), version: null }],
    mutations: [
      { type: "set", key, value: stored, expiresAt },
      ...auditMutations(ctx, {
        type: "web.enrollment_created",
        status: { success: true },
        ...(o.actor.remoteAddr ? { connection: { remote_addr: o.actor.remoteAddr } } : {}),
        browser_id: id,
        user: o.actor.user,
        expires,
        ...(o.label === undefined ? {} : { label: o.label }),
      }),
    ],
  });
  if (!r.ok) throw new KeyboundError("CONFLICT", "enrollment id collision; try again");
  return { code: `${id}.${secret}`, browser_id: id, expires };
}

function invalid(): KeyboundError {
  // One answer for unknown, expired, used and wrong codes: no oracle for guessing.
  return new KeyboundError(
    "ENROLLMENT_CODE_INVALID",
    "enrollment code is unknown, expired or already used: ask an admin for a new tctl web enroll",
  );
}

/**
 * Enrolls a browser with a code. A wrong secret for an existing code burns
 * the code (audited once), so a code cannot be guessed at; an unknown id
 * stores nothing.
 */
export async function enrollBrowser(
  ctx: ServerContext,
  req: EnrollRequest,
  remoteAddr?: string,
): Promise<EnrollResponse> {
  const now = ctx.now();
  const [id, secret] = req.code.split(".");
  const key = webEnrollmentKey(id);
  const entry = await ctx.backend.get(key);
  const parsed = entry ? StoredEnrollment.safeParse(entry.value) : undefined;
  if (!entry || !parsed?.success || new Date(parsed.data.expires) <= now) throw invalid();
  const code = parsed.data;
  const connection = remoteAddr ? { connection: { remote_addr: remoteAddr } } : {};
  const secretOk = timingSafeEqual(await sha256(secret), fromHex(code.secret_sha256));
  if (!secretOk) {
    await ctx.backend.commit({
      checks: [{ key, version: entry.version }],
      mutations: [
        { type: "delete", key },
        ...auditMutations(ctx, {
          type: "web.enrolled",
          status: { success: false, error: "ENROLLMENT_CODE_INVALID" },
          ...connection,
          browser_id: id,
          reason: "wrong secret: the code is burned",
        }),
      ],
    });
    throw invalid();
  }
  let publicKey: CryptoKey;
  const spki = fromBase64(req.public_key);
  try {
    publicKey = await importSpki(spki);
  } catch {
    throw new KeyboundError("BAD_PARAMETER", "public_key: not an ECDSA P-256 or Ed25519 SPKI");
  }
  // Sign with the CA state as it is now, and commit only if no rotation moved
  // it meanwhile: another instance may have changed the signing key (as joins do).
  await refreshCas(ctx, 0);
  const caRevision = ctx.cas.revision;
  const tls = ctx.cas.user.tls;
  if (!tls) throw new KeyboundError("INTERNAL", "user CA has no X.509 key");
  const notBefore = new Date(now.getTime() - CERT_BACKDATE_MS);
  const notAfter = new Date(now.getTime() + code.session_ttl_seconds * 1000);
  const der = await issueCertificate({
    issuer: {
      subject: parseCertificate(tls.certDer).subjectDer,
      privateKey: tls.keyPair.privateKey,
      publicKey: tls.keyPair.publicKey,
    },
    subject: browserSubject(id),
    publicKey,
    serial: randomSerial(),
    notBefore,
    notAfter,
    extKeyUsage: ["clientAuth"],
  });
  const expires = new Date(Math.floor(notAfter.getTime() / 1000) * 1000).toISOString();
  const browser: WebBrowser = {
    id,
    username: browserUserName(id),
    ...(code.label === undefined ? {} : { label: code.label }),
    enrolled_at: now.toISOString(),
    expires,
    enrolled_by: code.created_by,
    ...(remoteAddr ? { remote_addr: remoteAddr } : {}),
    ...(req.user_agent === undefined ? {} : { user_agent: req.user_agent }),
    cert_sha256: toHex(await sha256(der)),
  };
  const browserKey = webBrowserKey(id);
  const r = await ctx.backend.commit({
    checks: [
      { key, version: entry.version },
      { key: browserKey, version: null },
      { key: CA_REVISION_KEY, version: caRevision },
    ],
    mutations: [
      { type: "delete", key },
      { type: "set", key: browserKey, value: browser, expiresAt: notAfter.getTime() },
      ...auditMutations(ctx, {
        type: "web.enrolled",
        status: { success: true },
        ...connection,
        browser_id: id,
        user: browser.username,
        enrolled_by: code.created_by,
        expires,
      }),
    ],
  });
  if (!r.ok) {
    // The code is untouched: a CA rotation moved on while signing; it can be used again.
    if ((await ctx.backend.get(key))?.version === entry.version) {
      await refreshCas(ctx, 0);
      throw new KeyboundError("CONFLICT", "certificate authorities changed; please try again");
    }
    // Someone else used the code between our read and this commit.
    throw invalid();
  }
  return { browser_id: id, username: browser.username, cert: toBase64(der), expires };
}
