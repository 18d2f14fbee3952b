/**
 * The real `auth start` process: TLS, printed URL and pin, files on
 * disk, restart, signals and flag errors.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { signRequest } from "../../src/protocol/signed_request.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import { CLUSTER_META } from "../../src/server/keys.ts";
import { silentLogger } from "../../src/util/log.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { ignoreWithout } from "../_tools.ts";

/** A test that runs openssl: ignored, saying why, outside CI without it. */
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, { ignore: ignoreWithout("auth service test checked by openssl", "openssl") }, fn);

const MAIN = new URL("../../runtime-adapters/deno/entry/auth.ts", import.meta.url).pathname;
// The permissions of the "auth" task in deno.json, so the test proves they suffice.
const PERMS = [
  "--unstable-kv",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys=hostname,uid",
];

interface Running {
  child: Deno.ChildProcess;
  url: string;
  pin: string;
  stderr: Promise<string>;
}

function command(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
}

/** Starts the service and waits for its two startup lines. */
async function startAuth(dataDir: string, extra: string[] = []): Promise<Running> {
  const child = command(["start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", ...extra])
    .spawn();
  const stderr = new Response(child.stderr).text();
  let out = "";
  const { promise: started, resolve } = Promise.withResolvers<boolean>();
  // Read stdout to its end in the background so the pipe is drained and closed.
  const stdout = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      out += chunk;
      if (/CA pin \S+\n/.test(out)) resolve(true);
    }
    resolve(false);
  })();
  if (!(await started)) {
    throw new Error(`auth exited before listening: ${out}\n${await stderr}`);
  }
  const url = /listening on (\S+)/.exec(out)![1];
  const pin = /CA pin (\S+)/.exec(out)![1];
  return { child, url, pin, stderr: Promise.all([stderr, stdout]).then(([e]) => e) };
}

async function stop(r: Running, signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
  r.child.kill(signal);
  const status = await r.child.status;
  await r.stderr;
  return status;
}

async function opensslPin(caPem: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      `openssl x509 -pubkey -noout -in "${dir}/ca.pem" | openssl pkey -pubin -outform der | sha256sum`,
    ],
    stdout: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  assert(out.success, "openssl pipeline ran");
  return "sha256:" + new TextDecoder().decode(out.stdout).split(/\s/)[0];
}

test("auth start: HTTPS with the host CA, pin, admin identity, restart, SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const dataDir = `${dir}/data`;
  const first = await startAuth(dataDir, ["--cluster-name", "proc.example"]);
  try {
    assertMatch(first.url, /^https:\/\/127\.0\.0\.1:[1-9][0-9]*$/);
    assertMatch(first.pin, /^sha256:[0-9a-f]{64}$/);

    const identityPath = `${dataDir}/admin-identity`;
    assertEquals((await Deno.stat(identityPath)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(dataDir)).mode! & 0o777, 0o700);
    const identity = await parseIdentityFile(await Deno.readTextFile(identityPath));
    assertEquals(identity.hostCaPems.length, 1);
    assertEquals(await opensslPin(identity.hostCaPems[0]), first.pin);

    const client = Deno.createHttpClient({ caCerts: identity.hostCaPems });
    const ping = await (await fetch(`${first.url}/v1/ping`, { client })).json();
    assertEquals(ping.cluster_name, "proc.example");
    assertEquals(ping.ca_pin, first.pin);

    // The admin identity works over the wire, and the service's certificate is
    // not accepted when only the user CA is trusted.
    const auth = await signRequest(identity, { method: "GET", path: "/v1/status" });
    const status = await fetch(`${first.url}/v1/status`, {
      client,
      headers: { authorization: auth },
    });
    assertEquals(status.status, 200);
    assertEquals((await status.json()).ca_pin, first.pin);
    const wrongTrust = Deno.createHttpClient({ caCerts: identity.userCaPems });
    let rejected = false;
    await fetch(`${first.url}/v1/ping`, { client: wrongTrust }).catch(() => (rejected = true));
    assert(rejected, "TLS fails when the host CA is not trusted");
    wrongTrust.close();
    client.close();
  } finally {
    assertEquals((await stop(first)).code, 0);
  }

  const kv = await DenoKvBackend.open(`${dataDir}/keybound.kv`);
  assertEquals(
    (await kv.get<{ cluster_name: string }>(CLUSTER_META))?.value.cluster_name,
    "proc.example",
  );
  await kv.close();

  const identityBefore = await Deno.readTextFile(`${dataDir}/admin-identity`);
  const second = await startAuth(dataDir, ["--cluster-name", "proc.example"]);
  try {
    assertEquals(second.pin, first.pin);
  } finally {
    assertEquals((await stop(second)).code, 0);
  }
  assertEquals(await Deno.readTextFile(`${dataDir}/admin-identity`), identityBefore);

  const mismatch = await command([
    "start",
    "--data-dir",
    dataDir,
    "--cluster-name",
    "other.example",
  ])
    .output();
  assertEquals(mismatch.code, 1);
  assertStringIncludes(new TextDecoder().decode(mismatch.stderr), 'holds cluster "proc.example"');
  await Deno.remove(dir, { recursive: true });
});

Deno.test("auth start --insecure-no-tls serves plain HTTP on loopback; SIGINT stops it", async () => {
  const dir = await Deno.makeTempDir();
  const r = await startAuth(`${dir}/data`, ["--insecure-no-tls", "--cluster-name", "plain"]);
  try {
    assertMatch(r.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const ping = await (await fetch(`${r.url}/v1/ping`)).json();
    assertEquals(ping.cluster_name, "plain");
  } finally {
    assertEquals((await stop(r, "SIGINT")).code, 0);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("two auth processes started together on one data dir share one cluster", async () => {
  const dir = await Deno.makeTempDir();
  const both = await Promise.all([
    startAuth(`${dir}/data`, ["--cluster-name", "race"]),
    startAuth(`${dir}/data`, ["--cluster-name", "race"]),
  ]);
  try {
    assertEquals(both[0].pin, both[1].pin);
  } finally {
    for (const r of both) assertEquals((await stop(r)).code, 0);
  }
  const identity = await parseIdentityFile(await Deno.readTextFile(`${dir}/data/admin-identity`));
  assertEquals(identity.userCaPems.length, 1);
  await Deno.remove(dir, { recursive: true });
});

async function failing(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await command(args).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("auth start refuses a new cluster's name longer than X.509's common name allows", async () => {
  const dir = await Deno.makeTempDir();
  const name = "n".repeat(49) + ".example"; // 57 characters
  const tooLong = await failing(["start", "--data-dir", `${dir}/d`, "--cluster-name", name]);
  assertEquals(tooLong.code, 1);
  assertEquals(tooLong.stderr.split("\n").filter((l) => l.startsWith("auth: error")), [
    `auth: error [CONFIG_INVALID]: invalid cluster name "${name}" (57 characters): ` +
    `a new cluster's name is at most 56 characters (its CA certificates' common name, which ` +
    `X.509 bounds at 64, is the name plus " Ed25519"); set it with --cluster-name (default: the ` +
    `host name), or CLUSTER_NAME on Workers`,
  ]);
  // Any name is quoted as a JSON string (escaped once more by the one-line error rule), so its
  // own quotes cannot pass for the end of it; one character is "1 character" (review-ca N1).
  const quote = await failing(["start", "--data-dir", `${dir}/d`, "--cluster-name", '"']);
  assertEquals(quote.code, 1);
  assertEquals(
    quote.stderr.split("\n").find((l) => l.startsWith("auth: error")),
    'auth: error [CONFIG_INVALID]: invalid cluster name "\\\\"" (1 character): use 1-253 ' +
      'letters, digits, ".", "_" or "-", starting with a letter or digit; set it with ' +
      "--cluster-name (default: the host name), or CLUSTER_NAME on Workers",
  );
  // Refused before anything was written: neither the data directory nor a Deno KV file was
  // made (review-ca N2), and the same directory takes a valid name afterwards.
  assertEquals(await Array.fromAsync(Deno.readDir(dir)), []);
  const r = await startAuth(`${dir}/d`, ["--cluster-name", name.slice(1)]);
  assertEquals((await stop(r)).code, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("auth start keeps a stored cluster whose name is longer than a new one's may be", async () => {
  const dir = await Deno.makeTempDir();
  const long = "l".repeat(92) + ".example"; // 100 characters
  // What an older version stored: the cluster record under the long name.
  const backend = await DenoKvBackend.open(`${dir}/keybound.kv`);
  await bootstrapCluster(backend, { clusterName: "old", log: silentLogger, version: "0" });
  const meta = await backend.get<{ created_at: string }>(CLUSTER_META);
  await backend.commit({
    checks: [],
    mutations: [{
      type: "set",
      key: CLUSTER_META,
      value: { cluster_name: long, created_at: meta!.value.created_at },
    }],
  });
  await backend.close();
  // The file is there, so the start is no new cluster's: only the rule for any name applies.
  const r = await startAuth(dir, ["--cluster-name", long]);
  assertEquals((await stop(r)).code, 0);
  assertStringIncludes(await r.stderr, "the cluster name is longer than a new cluster's may be");
  // A name no cluster may have is refused before the file is opened, whatever it holds.
  const bad = await failing(["start", "--data-dir", dir, "--cluster-name", "a/b"]);
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, 'auth: error [CONFIG_INVALID]: invalid cluster name "a/b"');
  await Deno.remove(dir, { recursive: true });
});

Deno.test("auth flag errors: one clear line and a non-zero exit", async () => {
  const dir = await Deno.makeTempDir();
  const insecure = await failing([
    "start",
    "--data-dir",
    `${dir}/d`,
    "--listen",
    "0.0.0.0:0",
    "--insecure-no-tls",
  ]);
  assertEquals(insecure.code, 2);
  assertStringIncludes(insecure.stderr, "--insecure-no-tls is refused on non-loopback address");

  const noDir = await failing(["start"]);
  assertEquals(noDir, { code: 2, stderr: "auth: error [BAD_PARAMETER]: --data-dir is required\n" });

  const unknown = await failing(["start", "--data-dir", `${dir}/d`, "--bogus"]);
  assertEquals(unknown, {
    code: 2,
    stderr: "auth: error [BAD_PARAMETER]: unknown flag --bogus (see --help)\n",
  });

  const badListen = await failing(["start", "--data-dir", `${dir}/d`, "--listen", "nope"]);
  assertEquals(badListen.code, 2);
  assertStringIncludes(badListen.stderr, "--listen: invalid address");

  const badOrigin = await failing(["start", "--data-dir", `${dir}/d`, "--web-origin", "*"]);
  assertEquals(badOrigin, {
    code: 2,
    stderr:
      'auth: error [BAD_PARAMETER]: --web-origin "*" is not a web origin (not a URL); expected SCHEME://HOST[:PORT]\n',
  });

  const help = await command(["--help"]).output();
  assertEquals(help.code, 0);
  assertStringIncludes(new TextDecoder().decode(help.stdout), "--data-dir DIR");
  // Nothing was created by the failed starts.
  assertEquals([...Deno.readDirSync(dir)].length, 0);
  await Deno.remove(dir, { recursive: true });
});
