/**
 * Fixture of the server-side rotation tests: a real auth process (`auth
 * start` on 127.0.0.1, port 0, Deno KV file in its data directory), real
 * tctl runs against it with its admin identity, and a bot client that
 * trusts the auth service the way tbot must: through the host CAs of the
 * last trust bundle it received (docs/protocol.md §10).
 *
 * @module
 */
import {
  type AuthServiceProcess,
  spawnAuthService,
} from "../../runtime-adapters/deno/auth_process.ts";
import { fetchUnverified } from "../../runtime-adapters/deno/trust.ts";
import { classifyingFetchFailures } from "../../runtime-adapters/deno/fetch_errors.ts";
import {
  certificatesFromPem,
  parseCertificate,
  type ParsedCertificate,
  spkiPin,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import type { CaStatus, CaTypeName } from "../../src/protocol/ca_rotation.ts";
import type { ClusterStatus } from "../../src/protocol/discovery.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { assertEquals } from "../_assert.ts";
import { type Harness, TestBot } from "../server/_join_fixture.ts";
import { type RunResult, tctl } from "../tctl/_harness.ts";

/** Role, bot role and workload identity every rotation test bot gets. */
const SEED_YAML = `kind: role
version: v7
metadata:
  name: workload
spec:
  allow:
    logins: [root]
    rules:
      - resources: [host_cert]
        verbs: [create]
    workload_identity_labels:
      env: [dev]
---
kind: workload_identity
version: v1
metadata:
  name: example
  labels:
    env: dev
spec:
  spiffe:
    id: /bot/{{ user.bot_name }}
`;

/** A running auth process for rotation tests. */
export interface RotationAuth extends AsyncDisposable {
  /** The process. */
  proc: AuthServiceProcess;
  /** Its data directory. */
  dataDir: string;
  /** Runs tctl against it with its admin identity. */
  tctl(...args: string[]): Promise<RunResult>;
  /** `tctl status --format json`. */
  status(): Promise<ClusterStatus & { cas: CaStatus[] }>;
  /** One CA's status. */
  ca(type: CaTypeName): Promise<CaStatus>;
  /** `tctl auth rotate --type=T --manual --phase=P`; asserts success. */
  phase(type: CaTypeName, phase: string): Promise<void>;
  /** Every trusted host CA certificate, PEM (signing first), by `tctl auth export`. */
  hostCas(): Promise<string[]>;
  /** Pin of the host CA that signed the auth service's TLS leaf now. */
  servingPin(): Promise<string>;
  /** A bot on a fresh token `name` (bot `name`, role `workload`), onboarded. */
  onboard(name: string): Promise<RotationBot>;
  /**
   * Stops the process, runs `whileStopped` (on its Deno KV file, say), and
   * starts it again on the same data directory and port: a process with
   * empty caches.
   */
  restart(whileStopped?: () => Promise<void>): Promise<void>;
}

/** A bot that follows the trust bundle as tbot must. */
export class RotationBot extends TestBot {
  /**
   * @param baseUrl auth service URL
   * @param tokenName its token
   * @param hostCas host CA PEMs it trusts (from its last trust bundle)
   */
  constructor(baseUrl: string, tokenName: string, public hostCas: string[]) {
    super({ baseUrl } as unknown as Harness, tokenName);
  }

  /**
   * A fetch that verifies the auth service against {@linkcode hostCas}, fresh
   * connection each time, through the adapter tbot uses (so a connection reset
   * by a TLS swap before the request was sent is reported as such, and the
   * request client sends it again, as for tbot).
   */
  get fetch(): typeof fetch {
    const caCerts = this.hostCas;
    return classifyingFetchFailures(async (input: string | URL | Request, init?: RequestInit) => {
      const client = Deno.createHttpClient({ caCerts, poolMaxIdlePerHost: 0 });
      try {
        const res = await fetch(input, { ...init, client });
        const body = await res.arrayBuffer();
        return new Response(body, { status: res.status, headers: res.headers });
      } finally {
        client.close();
      }
    });
  }

  /** Joins (a refresh when it holds an identity) and takes the trust bundle's host CAs. */
  async renew(o: { recover?: boolean } = {}) {
    const r = await this.join({ ...o, fetch: this.fetch });
    if (r.trust_bundle) this.hostCas = r.trust_bundle.host.tls_ca_certs;
    return r;
  }
}

/**
 * The leaf certificate a TLS server presents. A handshake that falls on the
 * moment a certificate swap closes the old listener is reset; it is retried
 * (as clients do), at most three times.
 */
export async function servedLeaf(url: string): Promise<ParsedCertificate> {
  for (let attempt = 1;; attempt++) {
    try {
      return parseCertificate((await fetchUnverified(url)).leafDer);
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** `sha256:` pin of a PEM CA certificate. */
export function pemPin(pem: string): Promise<string> {
  return spkiPin(parseCertificate(certificatesFromPem(pem)[0]));
}

/** The one of `caPems` whose key signed `cert`, or undefined. */
export async function issuerOf(
  cert: ParsedCertificate,
  caPems: string[],
): Promise<string | undefined> {
  for (const pem of caPems) {
    const ca = parseCertificate(certificatesFromPem(pem)[0]);
    if (await verifyCertificateSignature(cert, await ca.publicKey())) return pem;
  }
  return undefined;
}

/** Polls `fn` every 100 ms until it returns true, for at most `ms`. */
export async function eventually(fn: () => Promise<boolean>, ms = 15_000, what = "condition") {
  const end = performance.now() + ms;
  while (!(await fn())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `auth start` with a fresh KV file and seeds the role and workload identity. */
export async function startRotationAuth(
  o: { args?: string[]; storage?: string } = {},
): Promise<RotationAuth> {
  const dir = await Deno.makeTempDir({ prefix: "keybound-rotation-" });
  const dataDir = `${dir}/data`;
  const args = ["--cluster-name", "rotation.example", ...(o.args ?? [])];
  let proc = await spawnAuthService({ dataDir, args, captureLog: true });
  const run = (...args: string[]) =>
    tctl([...args, "--auth-server", proc.addr, "-i", `${dataDir}/admin-identity`]);
  const status = async () => {
    const r = await run("status", "--format", "json");
    assertEquals(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const hostCas = async () => {
    const r = await run("auth", "export", "--type=host", "--format=pem");
    assertEquals(r.code, 0, r.stderr);
    return r.stdout.split(/(?<=-----END CERTIFICATE-----\n)/).filter((s) => s.trim() !== "");
  };
  await Deno.writeTextFile(`${dir}/seed.yaml`, SEED_YAML);
  const seeded = await run("create", `${dir}/seed.yaml`);
  assertEquals(seeded.code, 0, seeded.stderr);
  return {
    get proc() {
      return proc;
    },
    dataDir,
    tctl: run,
    status,
    hostCas,
    async ca(type) {
      return (await status()).cas.find((c: CaStatus) => c.type === type);
    },
    async phase(type, phase) {
      const r = await run("auth", "rotate", `--type=${type}`, "--manual", `--phase=${phase}`);
      assertEquals(r.code, 0, `${type} → ${phase}: ${r.stderr}`);
    },
    async servingPin() {
      const issuer = await issuerOf(await servedLeaf(proc.url), await hostCas());
      if (!issuer) throw new Error("the served leaf verifies under no trusted host CA");
      return pemPin(issuer);
    },
    async onboard(name) {
      const id = await parseIdentityFile(await Deno.readTextFile(`${dataDir}/admin-identity`));
      const bot = new RotationBot(proc.url, name, id.hostCaPems);
      const pub = await bot.keys.add("EdDSA");
      const r = await run(
        "bots",
        "add",
        name,
        "--roles",
        "workload",
        "--initial-public-key",
        pub,
        "--recovery-limit",
        "5",
      );
      assertEquals(r.code, 0, r.stderr);
      await bot.renew();
      return bot;
    },
    async restart(whileStopped) {
      const listen = proc.addr;
      await proc.stop();
      await whileStopped?.();
      proc = await spawnAuthService({ dataDir, args, listen, captureLog: true });
    },
    async [Symbol.asyncDispose]() {
      await proc.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
