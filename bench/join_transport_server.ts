/**
 * The transport and storage floor of a refresh join (run by
 * `bench/join_transport.ts`, not alone): a bare `Deno.serve` on loopback
 * that does, per refresh, what the auth service cannot avoid besides its
 * cryptography and its own logic: read two JSON requests and answer them
 * with bodies of the real sizes, read the keys a refresh reads (two at
 * `begin`, five at `continue`, batched as the Deno KV backend does) and
 * commit the join's one compare-and-swap of the same shape and sizes to a
 * Deno KV file. No hono, no zod, no Keybound code.
 *
 * With a crypto plan (the fourth argument, a JSON {@linkcode CryptoPlan}
 * file) it is the protocol's floor: it also makes, per request, the
 * WebCrypto calls of a steady-state refresh in the auth service, on inputs
 * of the real sizes and with the handler's parallelism — `begin`: the reads,
 * then the AES-256-GCM seal of the session; `continue`: the session's open
 * beside the request's body hash and signature check, then (once open) the
 * challenge's hash, the solution's and the join state's verifications beside
 * the reads, then the X.509, SSH and join-state signatures together, then the
 * issued certificate's SHA-256 beside the commit. (The subject key
 * identifier's SHA-1 is remembered per key in the auth service: a bot that
 * keeps its key costs none.)
 *
 * `deno run -A --unstable-kv bench/join_transport_server.ts <kv file> <begin reply> <continue reply> [crypto plan]`
 * (the replies are files); prints `port <n>` once it listens. `?bot=<n>` names
 * the bot a request is for: each bot's token and instance are its own keys, as
 * in the auth service, so concurrent refreshes of different bots do not conflict.
 *
 * @module
 */

/** What the floor server signs, verifies and hashes per refresh (sizes from a captured refresh). */
export interface CryptoPlan {
  /** WebCrypto name of the bot's certificate key (signs the `continue`; the X.509 CA key matches it). */
  certificateKey: "Ed25519" | "P-256";
  /** Bytes of the sealed session's plaintext. */
  sessionBytes: number;
  /** The signed `continue`'s JWS signing input. */
  requestInput: string;
  /** The challenge text (hashed for `chash`). */
  challenge: string;
  /** The solution's JWS signing input (Ed25519 bound key). */
  solutionInput: string;
  /** The previous join state's JWS signing input (Ed25519). */
  joinStateInput: string;
  /** Bytes of the issued X.509 certificate's TBS. */
  tbsBytes: number;
  /** Bytes of the issued X.509 certificate (hashed for the next refresh's cache entry). */
  certBytes: number;
  /** Bytes the SSH certificate's signature covers. */
  sshSignedBytes: number;
  /** The new join state's JWS signing input. */
  newJoinStateInput: string;
}

const [path, beginReplyFile, continueReplyFile, planFile] = Deno.args;
const kv = await Deno.openKv(path);
const beginReply = await Deno.readTextFile(beginReplyFile);
const continueReply = await Deno.readTextFile(continueReplyFile);
// Stored values of about the sizes the join's commit writes: token, bot
// instance (with its authentication history), used-marker, resume record (the
// result), one audit event.
const token = { spec: "t".repeat(900), status: "s".repeat(300) };
const instance = { history: "i".repeat(3000) };
const audit = { event: "a".repeat(600) };
let n = 0;

/** The server's WebCrypto work of one refresh, per request. */
interface ServerCrypto {
  /** `begin`, after its reads. */
  seal(): Promise<unknown>;
  /** `continue`: the open and the checks; `reads` start once the session is open. */
  check(body: Uint8Array<ArrayBuffer>, reads: () => Promise<unknown>): Promise<unknown>;
  /** `continue`: the signatures of the credentials. */
  sign(): Promise<unknown>;
  /** `continue`: the issued certificate's hash. */
  remember(): Promise<unknown>;
}

async function serverCrypto(plan: CryptoPlan): Promise<ServerCrypto> {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  const params = (name: string) =>
    name === "P-256" ? { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } : { name };
  const pair = async (name: string) =>
    await crypto.subtle.generateKey(params(name), false, ["sign", "verify"]) as CryptoKeyPair;
  const [cert, ed, aes] = await Promise.all([
    pair(plan.certificateKey),
    pair("Ed25519"),
    crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]),
  ]);
  const signed = async (name: string, key: CryptoKeyPair, text: string) => {
    const data = utf8(text);
    return { data, sig: await crypto.subtle.sign(params(name), key.privateKey, data) };
  };
  const request = await signed(plan.certificateKey, cert, plan.requestInput);
  const solution = await signed("Ed25519", ed, plan.solutionInput);
  const joinState = await signed("Ed25519", ed, plan.joinStateInput);
  const newJoinState = utf8(plan.newJoinStateInput);
  const challenge = utf8(plan.challenge);
  const random = (bytes: number) => crypto.getRandomValues(new Uint8Array(bytes));
  const plain = random(plan.sessionBytes);
  const aad = utf8("keybound-join-session-v1");
  const iv = random(12);
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: aad },
    aes,
    plain,
  );
  const tbs = random(plan.tbsBytes);
  const sshSigned = random(plan.sshSignedBytes);
  const issued = random(plan.certBytes);
  const verify = (
    name: string,
    key: CryptoKeyPair,
    s: { data: Uint8Array<ArrayBuffer>; sig: ArrayBuffer },
  ) => crypto.subtle.verify(params(name), key.publicKey, s.sig, s.data);
  return {
    seal: () =>
      crypto.subtle.encrypt({ name: "AES-GCM", iv: random(12), additionalData: aad }, aes, plain),
    check: (body, reads) => {
      const open = crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, aes, sealed);
      return Promise.all([
        crypto.subtle.digest("SHA-256", body),
        verify(plan.certificateKey, cert, request),
        open.then(() =>
          Promise.all([
            crypto.subtle.digest("SHA-256", challenge),
            verify("Ed25519", ed, solution),
            verify("Ed25519", ed, joinState),
            reads(),
          ])
        ),
      ]);
    },
    sign: () =>
      Promise.all([
        crypto.subtle.sign(params(plan.certificateKey), cert.privateKey, tbs),
        crypto.subtle.sign(params("Ed25519"), ed.privateKey, sshSigned),
        crypto.subtle.sign(params("Ed25519"), ed.privateKey, newJoinState),
      ]),
    remember: () => crypto.subtle.digest("SHA-256", issued),
  };
}

const work = planFile ? await serverCrypto(JSON.parse(await Deno.readTextFile(planFile))) : null;

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`port ${port}`),
}, async (req) => {
  const body = new Uint8Array(await req.arrayBuffer());
  JSON.parse(new TextDecoder().decode(body));
  const url = new URL(req.url);
  const bot = url.searchParams.get("bot") ?? "0";
  if (url.pathname.endsWith("/begin")) {
    await kv.getMany([["token", bot], ["locks_changed"]]);
    await work?.seal();
    return new Response(beginReply, { headers: { "content-type": "application/json" } });
  }
  const sid = `s${n++}`;
  const read = () =>
    kv.getMany([
      ["token", bot],
      ["locks_changed"],
      ["used", sid],
      ["instance", bot],
      ["bot"],
    ]);
  let reads: Awaited<ReturnType<typeof read>> | undefined;
  if (work) await work.check(body, async () => void (reads = await read()));
  else reads = await read();
  const [t, , , i] = reads!;
  await work?.sign();
  const commit = kv.atomic()
    .check({ key: ["token", bot], versionstamp: t.versionstamp })
    .check({ key: ["instance", bot], versionstamp: i.versionstamp })
    .check({ key: ["used", sid], versionstamp: null })
    .check({ key: ["ca_revision"], versionstamp: null })
    .set(["token", bot], token)
    .set(["instance", bot], instance)
    .set(["used", sid], { used_at: new Date().toISOString() }, { expireIn: 120_000 })
    .set(["resume", bot], { result: continueReply }, { expireIn: 3_600_000 })
    .set(["audit", sid], audit)
    .commit();
  const [r] = await Promise.all([commit, work?.remember()]);
  if (!r.ok) return new Response("conflict", { status: 409 });
  return new Response(continueReply, { headers: { "content-type": "application/json" } });
});
