/**
 * The crypto floor of one refresh join (issue #13 target "join"): the
 * cryptographic operations the auth service performs for one refresh, each
 * run in this process and timed in CPU (every thread of the process, from
 * `/proc/self/task/<tid>/schedstat`, so WebCrypto's worker threads count as
 * they do in the auth process), summed. Auth CPU per refresh is judged
 * against this sum measured in the same run.
 *
 * The operations of a steady-state refresh (the presented certificate is a
 * hit in the verified-certificate cache, which is keyed by its bytes: it is
 * neither verified nor hashed again):
 * - `begin`: seal the join session (AES-256-GCM).
 * - `continue`: open the session; verify the signed request (a signature by
 *   the bot's certificate key: Ed25519 for tbot unless an `identity` output
 *   copies its certificate, then P-256; plus SHA-256 of the body and of the
 *   challenge); verify the challenge solution (Ed25519); verify the previous
 *   join state (Ed25519); SHA-1 of the subject key (the certificate's subject
 *   key identifier); sign the X.509 certificate (the user CA's Ed25519 key
 *   for an Ed25519 certificate key, its P-256 key otherwise); sign the SSH
 *   certificate (Ed25519); sign the new join state (Ed25519); SHA-256 of the
 *   issued certificate (the cache entry of the next refresh).
 *
 * Key imports (the subject and bound keys arrive as bytes) are left out:
 * they are parsing, which the floor does not grant.
 *
 * @module
 */
import { generateKeyPair, type KeyAlgorithm, sign, verify } from "../src/crypto/keys.ts";
import { openSession, sealSession } from "../src/protocol/session.ts";

/** One operation of the floor with its measured CPU cost. */
export interface FloorOp {
  /** What the server does. */
  name: string;
  /** Times per refresh. */
  count: number;
  /** CPU ms of one. */
  cpuMs: number;
}

/** CPU nanoseconds of every thread of this process so far (Linux). */
function processCpuNs(): number {
  let total = 0;
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      total += Number(Deno.readTextFileSync(`/proc/self/task/${t.name}/schedstat`).split(" ")[0]);
    } catch {
      // the thread ended
    }
  }
  return total;
}

/** CPU ms per call of `fn`, over `n` sequential calls after a warm-up. */
async function cpuPerCall(n: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  const t0 = processCpuNs();
  for (let i = 0; i < n; i++) await fn();
  return (processCpuNs() - t0) / 1e6 / n;
}

/**
 * Measures the floor; `n` calls per operation. `certificateKey` is the
 * algorithm of the bot's certificate key, which signs the `continue`.
 */
export async function measureJoinFloor(
  certificateKey: KeyAlgorithm,
  n = 400,
): Promise<FloorOp[]> {
  const p256 = await generateKeyPair("ES256");
  const ed = await generateKeyPair("EdDSA");
  const tbs = crypto.getRandomValues(new Uint8Array(600)); // a bot certificate's TBS
  const jws = crypto.getRandomValues(new Uint8Array(400)); // a signed request's signing input
  const cert = crypto.getRandomValues(new Uint8Array(900));
  const subjectKeyBits = crypto.getRandomValues(new Uint8Array(65)); // a P-256 point
  const p256Sig = await sign(p256.privateKey, jws);
  const edSig = await sign(ed.privateKey, jws);
  const sessionKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  // A sealed session of the size a refresh's is (certificate hash, keys, challenge).
  const session = {
    sid: "0".repeat(32),
    exp: Math.floor(Date.now() / 1000) + 60,
    pad: "x".repeat(900),
  };
  const sealed = await sealSession(sessionKey, session);
  const requestVerify: [string, number, () => Promise<unknown>] = certificateKey === "ES256"
    ? ["P-256 verify (signed continue)", 1, () => verify(p256.publicKey, p256Sig, jws)]
    : ["Ed25519 verify (signed continue)", 1, () => verify(ed.publicKey, edSig, jws)];
  // The join signs an Ed25519 key's certificate with the user CA's Ed25519 key.
  const certificateSign: [string, number, () => Promise<unknown>] = certificateKey === "ES256"
    ? ["P-256 sign (X.509 certificate, P-256 user CA key)", 1, () => sign(p256.privateKey, tbs)]
    : ["Ed25519 sign (X.509 certificate, Ed25519 user CA key)", 1, () => sign(ed.privateKey, tbs)];
  const ops: [string, number, () => Promise<unknown>][] = [
    requestVerify,
    certificateSign,
    [
      "Ed25519 verify (challenge solution, previous join state)",
      2,
      () => verify(ed.publicKey, edSig, jws),
    ],
    ["Ed25519 sign (SSH certificate, new join state)", 2, () => sign(ed.privateKey, tbs)],
    ["AES-256-GCM seal (join session)", 1, () => sealSession(sessionKey, session)],
    ["AES-256-GCM open (join session)", 1, () => openSession(sessionKey, sealed, null)],
    [
      "SHA-256 (issued cert, request body, challenge)",
      3,
      () => crypto.subtle.digest("SHA-256", cert),
    ],
    ["SHA-1 (subject key identifier)", 1, () => crypto.subtle.digest("SHA-1", subjectKeyBits)],
  ];
  const out: FloorOp[] = [];
  for (const [name, count, fn] of ops) out.push({ name, count, cpuMs: await cpuPerCall(n, fn) });
  return out;
}

/** CPU ms of the whole floor: each operation times its count per refresh. */
export function floorTotalMs(ops: FloorOp[]): number {
  return ops.reduce((sum, o) => sum + o.count * o.cpuMs, 0);
}
