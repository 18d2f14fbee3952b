/**
 * Review R17: with CA pins or a CA file (tbot) and with the identity file's
 * host CAs (tctl), the auth service's certificate must chain to those CAs
 * *only*. The attacker here is a TLS-terminating proxy on 127.0.0.1 that
 * presents a certificate for the auth server's address from a CA in Deno's
 * default root store (added for the child process with `DENO_CERT`, as a
 * TLS-inspection root or a public CA that mis-issued would be) and relays
 * every request to the real auth service. Only the system-roots mode may
 * accept it.
 *
 * @module
 */
import { issueAdminIdentityFile, issueServerCertificate } from "../../src/server/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { clusterWithBot, newCluster } from "./_cluster.ts";
import { dirSnapshot, runTbot, tbotYaml } from "../tbot/_harness.ts";
import { tctl } from "../tctl/_harness.ts";

/** A proxy presenting `evil`'s certificate for 127.0.0.1 and relaying to `upstream`. */
async function mitm(upstream: string, upstreamCa: string) {
  const evil = await newCluster("evil.example");
  const cert = await issueServerCertificate(evil.ctx, {
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
  });
  const client = Deno.createHttpClient({ caCerts: [upstreamCa] });
  const relayed: string[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: cert.certPem,
    key: cert.keyPem,
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    relayed.push(`${req.method} ${url.pathname}`);
    const headers = new Headers(req.headers);
    headers.delete("host");
    const body = req.body ? await req.arrayBuffer() : undefined;
    const res = await fetch(upstream + url.pathname + url.search, {
      method: req.method,
      headers,
      body,
      client,
    });
    return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
  });
  return {
    address: `127.0.0.1:${server.addr.port}`,
    url: `https://127.0.0.1:${server.addr.port}`,
    caPem: evil.hostCaPem,
    /** The requests relayed so far (`METHOD /path`). */
    relayed: () => [...relayed],
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      client.close();
    },
  };
}

async function world() {
  const { cluster, secret } = await clusterWithBot(5);
  const served = await cluster.serve();
  const proxy = await mitm(served.url, cluster.hostCaPem);
  const dir = await Deno.makeTempDir({ prefix: "keybound-trust-exclusive-" });
  const evilCa = `${dir}/evil-ca.pem`;
  await Deno.writeTextFile(evilCa, proxy.caPem);
  const hostCa = `${dir}/host-ca.pem`;
  await Deno.writeTextFile(hostCa, cluster.hostCaPem);
  return {
    cluster,
    secret,
    served,
    proxy,
    dir,
    evilCa,
    hostCa,
    async [Symbol.asyncDispose]() {
      await proxy[Symbol.asyncDispose]();
      await served.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The single `ERROR` line of a failed run. */
function errorLine(stderr: string): string {
  const errors = stderr.split("\n").filter((l) => l.includes("ERROR"));
  assertEquals(errors.length, 1, stderr);
  return errors[0];
}

Deno.test("tbot: with ca_pins or ca_path, a server certificate from a root in Deno's default store is refused; system roots accept it", async () => {
  await using w = await world();
  const config = `${w.dir}/tbot.yaml`;
  const storage = `${w.dir}/bot`;
  const write = (o: { address: string; pins?: string[]; caPath?: string }) =>
    Deno.writeTextFile(config, tbotYaml({ storage, secret: w.secret, ...o }));
  const oneshot = (env: Record<string, string> = {}) =>
    runTbot(["start", "-c", config, "--oneshot", "-d"], env);
  // Without Deno's update check (an HTTPS client ~0.5 s after start), tbot's own transport
  // builds the process's root store: the cheap way is then always the one taken.
  const viaProxy = { DENO_CERT: w.evilCa, DENO_NO_UPDATE_CHECK: "1" };

  await write({ address: w.served.address, pins: [w.cluster.pin] });
  const joined = await oneshot();
  assertEquals(joined.code, 0, joined.stderr);
  const before = await dirSnapshot(storage);

  for (const trust of [{ pins: [w.cluster.pin] }, { caPath: w.hostCa }]) {
    await write({ address: w.proxy.address, ...trust });
    const refused = await oneshot(viaProxy);
    assertEquals(refused.code, 1, refused.stderr);
    const line = errorLine(refused.stderr);
    assertStringIncludes(line, "TLS_UNTRUSTED");
    assertStringIncludes(
      refused.stderr,
      "the auth service is verified against its CAs only component=tbot transport=deno",
    );
    assertStringIncludes(line, w.proxy.url);
    assertEquals(await dirSnapshot(storage), before, `${Object.keys(trust)[0]}: storage unchanged`);
  }
  // Only the pin's unverified look at the public host CA (a heal attempt) went through.
  assertEquals(
    w.proxy.relayed().filter((r) => r !== "GET /v1/ca/host"),
    [],
    "no join or signed call through the proxy",
  );

  // The control: the same root does vouch for the proxy where the system roots are trusted.
  await write({ address: w.proxy.address });
  const system = await oneshot(viaProxy);
  assertEquals(system.code, 0, system.stderr);
  assert(!system.stderr.includes("verified against its CAs only"), system.stderr);
  assert(w.proxy.relayed().some((r) => r.startsWith("POST ")), "the join went through the proxy");
});

Deno.test("tctl: the identity file's host CAs only; a certificate from a root in Deno's default store is refused", async () => {
  await using w = await world();
  const identity = `${w.dir}/admin-identity`;
  await Deno.writeTextFile(identity, await issueAdminIdentityFile(w.cluster.ctx), { mode: 0o600 });
  const env = { DENO_CERT: w.evilCa };
  const direct = await tctl(["status", "--auth-server", w.served.address, "-i", identity], { env });
  assertEquals(direct.code, 0, direct.stderr);
  const refused = await tctl(["status", "--auth-server", w.proxy.address, "-i", identity], { env });
  assertEquals(refused.code, 1, refused.stdout);
  assertEquals(refused.stderr.trimEnd().split("\n").length, 1, refused.stderr);
  assertStringIncludes(
    refused.stderr,
    `tctl: error [TLS_UNTRUSTED]: cannot reach the auth service at ${w.proxy.url}`,
  );
  assertStringIncludes(refused.stderr, "does not verify against the host CA in the identity file");
  assertEquals(w.proxy.relayed(), []);
});

Deno.test("exclusive trust: Deno's fetch when the process claims an empty root store, node:https after an earlier TLS use; both refuse a default-store root", async () => {
  await using w = await world();
  const probe = new URL("./_trust_exclusive_probe.ts", import.meta.url).pathname;
  const run = async (url: string, first: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", probe, w.hostCa, url, ...first],
      // Without Deno's update check, whose background HTTPS client would build the store first.
      env: { DENO_CERT: w.evilCa, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(text) as { emptyRoots: boolean; accepted: boolean; error: string };
  };
  for (const [first, emptyRoots] of [[[], true], [["--tls-first"], false]] as const) {
    const real = await run(w.served.url, [...first]);
    assertEquals({ emptyRoots: real.emptyRoots, accepted: real.accepted }, {
      emptyRoots,
      accepted: true,
    }, real.error);
    const proxied = await run(w.proxy.url, [...first]);
    assertEquals({ emptyRoots: proxied.emptyRoots, accepted: proxied.accepted }, {
      emptyRoots,
      accepted: false,
    });
  }
  assertEquals(w.proxy.relayed(), []);
});
