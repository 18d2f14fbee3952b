/**
 * The CA pin's unverified first contact (runtime-adapters/deno/trust.ts)
 * runs `node:tls` in a child process (./first_contact_probe.ts), so a tbot
 * that onboarded by pin does not keep the Node TLS layer resident; what the
 * child saw comes back as the same answers and errors as before. Real TLS on
 * loopback; the pin policy itself is tested in ./trust_test.ts.
 */
import {
  fetchUnverified,
  firstContactVia,
  PROBE_STDERR_MAX_BYTES,
  PROBE_STDOUT_MAX_BYTES,
  probeNetPermission,
} from "../../runtime-adapters/deno/trust.ts";
import {
  PROBE_MAX_BYTES,
  PROBE_MAX_LEAF_BYTES,
} from "../../runtime-adapters/deno/first_contact_probe.ts";
import { fetchFailure } from "../../runtime-adapters/deno/fetch_errors.ts";
import { isKeyboundError, KeyboundError } from "../../src/errors.ts";
import { issueServerCertificate } from "../../src/server/mod.ts";
import { certificatesFromPem } from "../../src/pki/pem.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { newCluster } from "../agent/_cluster.ts";

const ROOT = new URL("../../", import.meta.url);

/** An HTTPS server on loopback with a certificate from a fresh cluster's host CA. */
async function tlsServer(handler: (req: Request) => Response) {
  const cluster = await newCluster();
  const cert = await issueServerCertificate(cluster.ctx, {
    dnsNames: [],
    ipAddresses: ["127.0.0.1"],
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: cert.certPem, key: cert.keyPem, onListen: () => {} },
    handler,
  );
  return {
    url: `https://127.0.0.1:${server.addr.port}`,
    certPem: cert.certPem,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** How {@linkcode firstContactsIn} runs its process. */
interface ContactsOptions {
  /** Permission flags besides --allow-read and --allow-env. */
  flags?: string[];
  /** How many first contacts, through one `firstContactVia`. */
  contacts?: number;
  /** Code run just before the second contact. */
  beforeSecond?: string;
  /** The probe's program (`firstContactVia`'s default when absent). */
  probe?: URL;
  /** The process's working directory and extra variables. */
  cwd?: string;
  env?: Record<string, string>;
}

/**
 * Makes first contacts with `url` in a process without network permission
 * (unless `flags` give it), on the `deno` executable `exec`; checks each
 * answer and returns the `info` lines logged (message and the `deno` field).
 */
async function firstContactsIn(url: string, exec: string, options: ContactsOptions = {}) {
  const { flags = [], contacts = 1, beforeSecond = "", probe, cwd, env } = options;
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { firstContactVia } from ${
        JSON.stringify(new URL("runtime-adapters/deno/trust.ts", ROOT).href)
      };\n` +
        `const infos: unknown[] = [];\n` +
        `const contact = firstContactVia({ probe: ${
          probe ? `new URL(${JSON.stringify(probe.href)})` : "undefined"
        }, log: { debug() {}, warn() {}, error() {}, ` +
        `info: (msg: string, f?: Record<string, unknown>) => infos.push([msg, f?.deno]) } });\n` +
        `const seen = [];\n` +
        `for (let i = 0; i < ${contacts}; i++) {\n` +
        `  if (i === 1) { ${beforeSecond} }\n` +
        `  const r = await contact(Deno.args[0]);\n` +
        `  seen.push({ status: r.status, body: r.body, leaf: r.leafDer.length });\n` +
        `}\n` +
        `console.log(JSON.stringify({ seen, infos }));\n`,
    );
    const out = await new Deno.Command(exec, {
      args: [
        "run",
        "--config",
        new URL("deno.json", ROOT).pathname,
        "--no-prompt",
        "--allow-read",
        "--allow-env",
        ...flags,
        script,
        url,
      ],
      cwd,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const { seen, infos } = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(seen.length, contacts);
    for (const answer of seen) {
      assertEquals(answer.status, 200);
      assertEquals(JSON.parse(answer.body), { tls_ca_certs: [], ssh_ca_keys: [] });
      assert(answer.leaf > 100, `a DER certificate: ${answer.leaf} bytes`);
    }
    return infos as [string, string][];
  } finally {
    await Deno.remove(script);
  }
}

/** A link to (or, on another file system, a copy of) this `deno` executable at `path`. */
async function denoAt(path: string) {
  try {
    await Deno.link(Deno.execPath(), path);
  } catch {
    // Another file system than the CLI's: a copy (~100 MB) is the same program.
    await Deno.copyFile(Deno.execPath(), path);
  }
}

Deno.test("first contact: the unverified connection is made by a child process, not by tbot's", async () => {
  await using server = await tlsServer(() => Response.json({ tls_ca_certs: [], ssh_ca_keys: [] }));
  // A process without network permission: node:tls in it would be refused
  // (NotCapable); the child gets its own permission for the server only.
  const infos = await firstContactsIn(server.url, Deno.execPath(), { flags: ["--allow-run"] });
  assertEquals(infos, []);
});

Deno.test("first contact: the deno CLI under another name still runs the probe in a child", async () => {
  await using server = await tlsServer(() => Response.json({ tls_ca_certs: [], ssh_ca_keys: [] }));
  const dir = await Deno.makeTempDir();
  try {
    const renamed = `${dir}/deno-2.9.6`;
    await denoAt(renamed);
    assertEquals(await firstContactsIn(server.url, renamed, { flags: ["--allow-run"] }), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("first contact: without permission to start deno, it is made in this process, said once", async () => {
  await using server = await tlsServer(() => Response.json({ tls_ca_certs: [], ssh_ca_keys: [] }));
  // --allow-run for another program only: the child cannot be started, and the
  // connection is made here (with this process's network permission); the
  // second contact does not try the child again.
  const infos = await firstContactsIn(server.url, Deno.execPath(), {
    flags: ["--allow-run=true", `--allow-net=${new URL(server.url).host}`],
    contacts: 2,
  });
  assertEquals(infos.length, 1, JSON.stringify(infos));
});

Deno.test("first contact: after deno is replaced in place (an upgrade), it is made in this process", async () => {
  await using server = await tlsServer(() => Response.json({ tls_ca_certs: [], ssh_ca_keys: [] }));
  const dir = await Deno.makeTempDir();
  try {
    // The running executable renamed over, as `deno upgrade` and package managers
    // do: Deno.execPath() is then "<path> (deleted)", which cannot be started.
    const deno = `${dir}/deno`;
    await denoAt(deno);
    const infos = await firstContactsIn(server.url, deno, {
      flags: ["--allow-run", `--allow-write=${dir}`, `--allow-net=${new URL(server.url).host}`],
      contacts: 3,
      beforeSecond: `Deno.copyFileSync(${JSON.stringify(Deno.execPath())}, ${
        JSON.stringify(`${deno}.new`)
      }); Deno.renameSync(${JSON.stringify(`${deno}.new`)}, ${JSON.stringify(deno)});`,
    });
    // The first contact was the child's; the second fell back, the third did not try again.
    assertEquals(infos.map(([, path]) => path), [`${deno} (deleted)`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("first contact: a relative DENO_DIR leaves the probe's directory as it was", async () => {
  await using server = await tlsServer(() => Response.json({ tls_ca_certs: [], ssh_ca_keys: [] }));
  const dir = await Deno.makeTempDir();
  try {
    // The probe in a directory of its own, as in a bundle (whose files are checked).
    await Deno.mkdir(`${dir}/probe`);
    const probe = new URL(`file://${dir}/probe/first_contact_probe.ts`);
    await Deno.copyFile(new URL("runtime-adapters/deno/first_contact_probe.ts", ROOT), probe);
    // DENO_DIR=cache in ${dir}/work: this machine's cache, named relatively.
    const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
    await Deno.mkdir(`${dir}/work`);
    await Deno.symlink(
      JSON.parse(new TextDecoder().decode(info.stdout)).denoDir,
      `${dir}/work/cache`,
    );
    await firstContactsIn(server.url, Deno.execPath(), {
      flags: ["--allow-run"],
      probe,
      cwd: `${dir}/work`,
      env: { DENO_DIR: "cache" },
    });
    assertEquals(
      (await Array.fromAsync(Deno.readDir(`${dir}/probe`))).map((e) => e.name),
      ["first_contact_probe.ts"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("first contact: the probe's network permission is its host and port, port written out", () => {
  assertEquals(probeNetPermission("https://auth.example.com"), "--allow-net=auth.example.com:443");
  assertEquals(
    probeNetPermission("https://auth.example.com:443/"),
    "--allow-net=auth.example.com:443",
  );
  assertEquals(probeNetPermission("https://127.0.0.1:3025"), "--allow-net=127.0.0.1:3025");
  assertEquals(probeNetPermission("https://[::1]"), "--allow-net=[::1]:443");
  assertEquals(probeNetPermission("https://[fe80::1]:8443"), "--allow-net=[fe80::1]:8443");
});

Deno.test("first contact: a probe that prints anything but a result fails with CONNECTION_FAILED", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, string][] = [
      ["{}", "it printed no result ({})"],
      ["[1]", "it printed no result ([1])"],
      ['{"failure":"bogus","sent":false}', "it printed no result"],
      ['{"leaf":"","answer":"","extra":1}', "it printed no result"],
      ["not json", "it printed no result (not json)"],
    ];
    for (const [i, [printed, expected]] of cases.entries()) {
      const probe = new URL(`file://${dir}/probe_${i}.ts`);
      await Deno.writeTextFile(probe, `console.log(${JSON.stringify(printed)});\n`);
      const err = await assertRejects(
        () => firstContactVia({ probe })("https://127.0.0.1:1"),
        KeyboundError,
      );
      assert(isKeyboundError(err, "CONNECTION_FAILED"), `${printed}: ${err}`);
      assert(err.message.includes(expected), `${printed}: ${err.message}`);
    }
    // A probe that ends without a word: the message names how it ended.
    const silent = new URL(`file://${dir}/silent.ts`);
    await Deno.writeTextFile(silent, "Deno.exit(3);\n");
    const err = await assertRejects(
      () => firstContactVia({ probe: silent })("https://127.0.0.1:1"),
      KeyboundError,
    );
    assert(err.message.endsWith("the first-contact probe failed: exit 3"), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("first contact: a probe that writes more than its bound is killed, CONNECTION_FAILED", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A well-formed result over the bound (an answer of 600 KB, which the real probe
    // refuses to read), and two writers that never stop: none is read to its end.
    const http = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n` +
      JSON.stringify({ tls_ca_certs: ["x".repeat(600_000)], ssh_ca_keys: [] });
    const cases: [string, string, number][] = [
      [
        `console.log(${
          JSON.stringify(JSON.stringify({ leaf: btoa("x"), answer: btoa(http) }))
        });\n`,
        "stdout",
        PROBE_STDOUT_MAX_BYTES,
      ],
      [
        "const b = new Uint8Array(65536).fill(65); for (;;) Deno.stdout.writeSync(b);\n",
        "stdout",
        PROBE_STDOUT_MAX_BYTES,
      ],
      [
        "const b = new Uint8Array(4096).fill(65); for (;;) Deno.stderr.writeSync(b);\n",
        "stderr",
        PROBE_STDERR_MAX_BYTES,
      ],
    ];
    for (const [i, [program, stream, bound]] of cases.entries()) {
      const probe = new URL(`file://${dir}/probe_${i}.ts`);
      await Deno.writeTextFile(probe, program);
      const err = await assertRejects(
        () => firstContactVia({ probe })("https://127.0.0.1:1"),
        KeyboundError,
      );
      assert(isKeyboundError(err, "CONNECTION_FAILED"), `${i}: ${err}`);
      assertEquals(err.details, { probe_output_too_large: stream, limit_bytes: bound });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("first contact: the probe's longest result fits the bound its parent reads", async () => {
  // What the probe prints at its own limits: a leaf and an answer at their maximum.
  const b64 = (n: number) => 4 * Math.ceil(n / 3);
  const longest = JSON.stringify({
    leaf: "A".repeat(b64(PROBE_MAX_LEAF_BYTES)),
    answer: "A".repeat(b64(PROBE_MAX_BYTES)),
  }) + "\n";
  assert(longest.length < PROBE_STDOUT_MAX_BYTES, `${longest.length}`);
  // And through a real child: an answer just under the probe's limit comes back whole.
  const body = "z".repeat(PROBE_MAX_BYTES - 1024);
  await using server = await tlsServer(() => new Response(body));
  const { status, body: read } = await fetchUnverified(server.url);
  assertEquals(status, 200);
  assertEquals(read, body);
});

Deno.test("first contact: the server's certificate and answer come back byte for byte", async () => {
  const big = "x".repeat(100_000);
  await using server = await tlsServer(() => Response.json({ big }));
  const { leafDer, status, body } = await fetchUnverified(server.url);
  assertEquals(status, 200);
  assertEquals(JSON.parse(body), { big });
  assertEquals(leafDer, certificatesFromPem(server.certPem)[0]);
});

for (
  const [branch, fetchUnverified] of [
    ["child process", firstContactVia()],
    ["in this process (a compiled tbot)", firstContactVia({ deno: null })],
  ] as const
) {
  Deno.test(`first contact, ${branch}: failures keep their codes (refused, reset before the request, too large)`, async () => {
    // Nothing listens: CONNECTION_FAILED, with the cause tbot's message names.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const refused = await assertRejects(
      () => fetchUnverified(`https://127.0.0.1:${port}`),
      KeyboundError,
    );
    assert(isKeyboundError(refused, "CONNECTION_FAILED"), String(refused));
    assertEquals(
      fetchFailure(refused, `127.0.0.1:${port}`)?.message,
      `connection refused: nothing is listening at 127.0.0.1:${port}`,
    );

    // Accepted, then closed before the TLS handshake: the request was never sent.
    const closing = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closer = (async () => {
      for await (const conn of closing) conn.close();
    })();
    try {
      const reset = await assertRejects(
        () => fetchUnverified(`https://127.0.0.1:${(closing.addr as Deno.NetAddr).port}`),
        KeyboundError,
      );
      assert(isKeyboundError(reset, "CONNECTION_RESET_BEFORE_SEND"), String(reset));
    } finally {
      closing.close();
      await closer.catch(() => {});
    }

    // An answer over 256 KiB is not read to its end.
    await using server = await tlsServer(() => new Response("y".repeat(300 * 1024)));
    const large = await assertRejects(() => fetchUnverified(server.url), KeyboundError);
    assert(isKeyboundError(large, "CONNECTION_FAILED"), String(large));
    assert(large.message.endsWith("the answer is too large"), large.message);
  });
}
