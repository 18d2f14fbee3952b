/**
 * The floor under tbot's daemon memory (bench helper): a process that does a
 * renewing daemon's I/O with none of tbot's code — no zod, yaml, jose or
 * Keybound module. Started with the `tbot` task's flags, it
 *
 * - starts one child process (`openssl req -x509`; tbot's CA-pin onboarding
 *   starts its first-contact probe) and makes one TLS handshake on loopback to
 *   the certificate it made (tbot's exclusive-trust proof at every start);
 * - serves `/metrics` with `Deno.serve` (tbot's `diag_addr`), counting
 *   iterations in the line tbot's renewals use;
 * - every interval: generates a P-256 key and exports its SPKI (the new
 *   certificate's key), signs two request bodies with an Ed25519 key (the
 *   bound key's signatures on `begin` and `continue`), POSTs them to the auth
 *   service over HTTPS through one `Deno.createHttpClient({ caCerts })`
 *   (tbot's trust) on two public paths (charged by the service's per-address
 *   rate limit, which the bench raises),
 *   reads the answers (the server's work does not matter here), and writes eleven
 *   files atomically (write, fsync, rename, directory fsync: tbot's journal
 *   and identity output);
 * - runs V8's `gc()` after an iteration at most once per 10 s, as tbot's
 *   daemon does after its joins.
 *
 * ```sh
 * deno run <tbot task flags> bench/tbot_floor.ts AUTH_HOST:PORT CA.pem DIAG_HOST:PORT OUT_DIR [INTERVAL_MS [modules] [noproof]]
 * ```
 *
 * @module
 */
const [auth, caFile, diag, out, intervalArg, ...options] = Deno.args;
const interval = Number(intervalArg ?? 20);
// With `modules`: tbot's modules loaded first (./tbot_modules.ts, from its
// bundle) and never called, which splits what tbot adds over this floor into
// loading its code and running it. With `noproof`: no loopback handshake (its
// share of the floor).
if (options.includes("modules")) await import("./tbot_modules.ts");
const enc = new TextEncoder();

// tbot's start: one child process (the pin's first-contact probe) and a TLS
// handshake on loopback to a throwaway certificate (the exclusive-trust proof,
// runtime-adapters/deno/exclusive_trust.ts). The certificate comes from the child.
await Deno.mkdir(out, { recursive: true });
const made = await new Deno.Command("openssl", {
  args: [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-days",
    "1",
    "-keyout",
    `${out}/proof.key`,
    "-out",
    `${out}/proof.pem`,
  ],
  stdout: "null",
  stderr: "null",
}).output();
if (!made.success) throw new Error("openssl could not make the proof's certificate");
const proofCert = await Deno.readTextFile(`${out}/proof.pem`);
if (!options.includes("noproof")) await proof();

async function proof(): Promise<void> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: proofCert,
    key: await Deno.readTextFile(`${out}/proof.key`),
  });
  const accepted = listener.accept().then(async (c) => {
    await c.handshake();
    c.close();
  });
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
    caCerts: [proofCert],
  });
  await conn.handshake();
  conn.close();
  await accepted;
  listener.close();
}

let iterations = 0;
const [diagHost, diagPort] = [
  diag.slice(0, diag.lastIndexOf(":")),
  diag.slice(diag.lastIndexOf(":") + 1),
];
Deno.serve({ hostname: diagHost, port: Number(diagPort), onListen: () => {} }, (req) => {
  if (new URL(req.url).pathname !== "/metrics") return new Response("not found", { status: 404 });
  return new Response(`tbot_task_iterations_total{service="identity"} ${iterations}\n`);
});

const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] });
const bound = await crypto.subtle.generateKey({ name: "Ed25519" }, false, [
  "sign",
  "verify",
]) as CryptoKeyPair;

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    await f.write(data);
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
  const d = await Deno.open(out, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

async function post(path: string, body: string): Promise<void> {
  const sig = await crypto.subtle.sign("Ed25519", bound.privateKey, enc.encode(body));
  const res = await fetch(`https://${auth}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Floor ${new Uint8Array(sig).toBase64()}`,
    },
    body,
    client,
  } as RequestInit);
  await res.text();
}

let lastGc = -Infinity;
const gc = (globalThis as { gc?: () => void }).gc;
for (;;) {
  const key = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", key.publicKey));
  const body = JSON.stringify({ token: "floor", public_key: spki.toBase64(), n: iterations });
  // Two requests with bodies and their answers, on public paths (its join endpoints
  // would refuse this loop as a flood); the service's per-address rate limit charges
  // each, so the bench raises it (FLOOR_RATE_LIMIT in ./tbot.ts).
  await post("/v1/ping", body);
  await post("/v1/ca/host", body);
  await Promise.all(
    Array.from({ length: 11 }, (_, i) => writeAtomic(`${out}/f${i}`, enc.encode(body.repeat(4)))),
  );
  iterations++;
  if (gc && performance.now() - lastGc >= 10_000) {
    lastGc = performance.now();
    gc();
  }
  await new Promise((r) => setTimeout(r, interval));
}
