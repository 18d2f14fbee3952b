/**
 * Lets a process verify TLS servers against chosen CAs *only*.
 *
 * `Deno.createHttpClient({ caCerts })` adds `caCerts` to the process's
 * default root store (the Mozilla roots, or whatever `DENO_TLS_CA_STORE`,
 * `DENO_CERT` and `NODE_EXTRA_CA_CERTS` name); it cannot leave that store
 * out. Deno builds the store once per process, at the first TLS use, reading
 * those three variables then — not at start (Deno 2.9: `get_root_cert_store`
 * in cli/lib/args.rs behind a `OnceLock` provider; cli/rt/run.rs does the
 * same in a compiled binary). {@linkcode claimEmptyDefaultRoots} builds it
 * first, from an empty store list, so every client of the process trusts its
 * own `caCerts` and nothing else.
 *
 * Whether the claim took is proved, not assumed: while the store is built,
 * `DENO_CERT` names one throwaway certificate (its key dropped right after),
 * and a TLS handshake on loopback to that certificate must succeed. It
 * succeeds only if the store was built now, from our variables, so it holds
 * that certificate and no other root. A process that used TLS before (an
 * embedder, a test runner) fails the proof; callers then verify through
 * `node:https`, whose `ca` replaces the default store per connection
 * (./node_https_fetch.ts) at a higher start-up cost.
 *
 * @module
 */
import { generateStorableKeyPair } from "../../src/crypto/keys.ts";
import { certificateToPem } from "../../src/pki/pem.ts";
import { issueCertificate, NAME_OIDS } from "../../src/pki/x509.ts";
import { nodeHttpsFetcher } from "./node_https_fetch.ts";
import { granted } from "./permissions.ts";

/**
 * How long Keybound's own Deno HTTP clients keep an idle kept-alive
 * connection: half the auth service's idle limit (60 s, IDLE_TIMEOUT_MS in
 * ./tls_front.ts, not imported: it would put node:tls on tbot's start-up
 * path). At the limit itself a reused connection can meet the server's
 * close and the request fails (review7: 7 of 15 requests spaced exactly at
 * the limit; 0 of 15 with the pool closing first).
 */
export const CLIENT_POOL_IDLE_MS = 30_000;

/** The variables Deno reads when it builds the default root store. */
const STORE_VARIABLES = ["DENO_TLS_CA_STORE", "DENO_CERT", "NODE_EXTRA_CA_CERTS"] as const;

/** Longest wait for the loopback proof (a loaded machine; nothing else waits on it). */
const PROOF_TIMEOUT_MS = 10_000;

let claim: Promise<boolean> | undefined;

/**
 * A maker of fetches that verify the server against the given CAs (PEM) and
 * nothing else: Deno's fetch once this process's default root store is
 * claimed empty, else `node:https` with `ca`. Call it before this process
 * makes any other TLS connection, so the cheap way is the one taken.
 *
 * @example
 * ```ts ignore
 * const trustingOnly = await fetchTrustingOnly();
 * const f = trustingOnly([hostCaPem]); // no public CA, no DENO_CERT root vouches for the server
 * ```
 */
export async function fetchTrustingOnly(): Promise<(caPems: string[]) => typeof fetch> {
  if (!await claimEmptyDefaultRoots()) {
    const viaNode = await nodeHttpsFetcher();
    return (ca) => viaNode({ ca });
  }
  return (caCerts) => {
    const client = Deno.createHttpClient({ caCerts, poolIdleTimeout: CLIENT_POOL_IDLE_MS });
    return ((input: string | URL | Request, init?: RequestInit) =>
      fetch(input, { ...init, client })) as typeof fetch;
  };
}

/**
 * Makes the process's default TLS root store empty if no TLS was used yet,
 * and says whether it is (once per process; later calls share the answer).
 * True: a `Deno.createHttpClient({ caCerts })` of this process trusts exactly
 * `caCerts`. False: it would trust the default roots too.
 *
 * @example
 * ```ts ignore
 * const client = (await claimEmptyDefaultRoots())
 *   ? Deno.createHttpClient({ caCerts: [hostCaPem] }) // the host CA and nothing else
 *   : undefined; // verify another way
 * ```
 */
export function claimEmptyDefaultRoots(): Promise<boolean> {
  return claim ??= claimOnce().catch(() => false);
}

async function claimOnce(): Promise<boolean> {
  // The variables are read and set below: outside a narrowed --allow-env that would
  // prompt on a terminal (./permissions.ts), so such a process takes the other way.
  if (!STORE_VARIABLES.every((variable) => granted({ name: "env", variable }))) return false;
  // The proof listens on 127.0.0.1:0 and connects to the port it got: outside a narrowed
  // --allow-net either would prompt a terminal, so such a process takes the other way too.
  if (!granted({ name: "net", host: "127.0.0.1" })) return false;
  const probe = await probeCertificate();
  const saved = STORE_VARIABLES.map((name) => [name, Deno.env.get(name)] as const);
  try {
    // No store list ("," parses to none), no extra file: the probe certificate only.
    Deno.env.set("DENO_TLS_CA_STORE", ",");
    Deno.env.set("DENO_CERT", `base64:${btoa(probe.certPem)}`);
    Deno.env.delete("NODE_EXTRA_CA_CERTS");
    // Creating a client builds the store now (if nothing built it before).
    Deno.createHttpClient({}).close();
  } finally {
    // Synchronously restored: no child process (hooks) ever sees these values.
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
  return await handshakeSucceeds(probe);
}

/** A self-signed certificate for 127.0.0.1 and its key, made for the proof only. */
async function probeCertificate(): Promise<{ certPem: string; keyPem: string }> {
  const key = await generateStorableKeyPair("ES256");
  const subject = [{ oid: NAME_OIDS.commonName, value: "keybound root store probe" }];
  const now = Date.now();
  const der = await issueCertificate({
    issuer: { subject, privateKey: key.privateKey, publicKey: key.publicKey },
    subject,
    publicKey: key.publicKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 600_000),
    extKeyUsage: ["serverAuth"],
    ipAddresses: ["127.0.0.1"],
  });
  return { certPem: certificateToPem(der), keyPem: key.pkcs8Pem };
}

/** Whether a client of this process, with no `caCerts`, trusts the probe certificate. */
async function handshakeSucceeds(probe: { certPem: string; keyPem: string }): Promise<boolean> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: probe.certPem,
    key: probe.keyPem,
  });
  const accepted = listener.accept().then(async (conn) => {
    await conn.handshake().catch(() => {});
    return conn;
  }, () => null);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), PROOF_TIMEOUT_MS);
  });
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Promise.race([
      Deno.connectTls({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
      timeout,
    ]);
    await Promise.race([conn.handshake(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    conn?.close();
    listener.close();
    (await accepted)?.close();
  }
}
