/**
 * `tbot start MODE …` and `tbot configure MODE …` through the real tbot
 * entry point against a real auth service over HTTPS: the CLI-only form
 * writes what the equivalent config file writes, and `configure`'s YAML runs.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { newCluster } from "../agent/_cluster.ts";
import {
  certificatesFromPem,
  parseCertificate,
  parseSshCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import { put } from "../server/_workload_fixture.ts";
import { parseConfig } from "../../src/agent/config/load.ts";
import { runTbot, tbotYaml } from "./_harness.ts";
import { ignoreWithout } from "../_tools.ts";

async function setup() {
  const cluster = await newCluster();
  // Bot `example` may also ask for SSH host certificates (the ssh-host mode).
  await put(cluster.ctx, {
    kind: "role",
    version: "v7",
    metadata: { name: "hosts" },
    spec: { allow: { rules: [{ resources: ["host_cert"], verbs: ["create"] }] } },
  });
  await put(cluster.ctx, {
    kind: "bot",
    version: "v1",
    metadata: { name: "example" },
    spec: { roles: ["hosts"], traits: [] },
  });
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix: "tbot-cli-only-" });
  const token = async (name: string) =>
    (await cluster.createToken(name, "example", { recovery: { limit: 1, mode: "standard" } }))!;
  return {
    cluster,
    served,
    dir,
    token,
    async [Symbol.asyncDispose]() {
      await served.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function names(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** What an identity output certifies: the TLS subject and issuer, the SSH key id and principals. */
async function identityOf(dir: string) {
  const [der] = certificatesFromPem(await Deno.readTextFile(`${dir}/tlscert`));
  const cert = parseCertificate(der);
  const cas = certificatesFromPem(await Deno.readTextFile(`${dir}/tlscacerts`)).map(
    parseCertificate,
  );
  let signed = false;
  for (const ca of cas) signed ||= await verifyCertificateSignature(cert, await ca.publicKey());
  assert(signed, `${dir}/tlscert is signed by a CA in tlscacerts`);
  assert(cert.notAfter > new Date(), "not expired");
  const ssh = await parseSshCertificate(await Deno.readTextFile(`${dir}/key-cert.pub`));
  // Leaves out what differs by instance: its id and join token (in the subject, in the no-login principal).
  const perInstance = new Set(["1.3.9999.2.20", "1.3.9999.2.21"]);
  return {
    subject: cert.subject.filter((a) => !perInstance.has(a.oid)).map((a) => `${a.oid}=${a.value}`),
    issuer: cert.issuer.map((a) => `${a.oid}=${a.value}`),
    sshKeyId: ssh.keyId,
    sshCertType: ssh.certType,
    sshPrincipals: ssh.principals.filter((p) => !p.startsWith("-teleport-nologin-")),
  };
}

Deno.test("cli-only: `tbot start identity … --oneshot` writes the same files as the config file", async () => {
  await using s = await setup();
  const fileSecret = await s.token("from-file");
  const flagSecret = await s.token("from-flags");
  const yaml = tbotYaml({
    address: s.served.address,
    storage: `${s.dir}/file-bot`,
    pins: [s.cluster.pin],
    secret: fileSecret,
    output: `${s.dir}/file-out`,
  }).replace("token: example", "token: from-file");
  await Deno.writeTextFile(`${s.dir}/tbot.yaml`, yaml);
  const viaFile = await runTbot(["start", "-c", `${s.dir}/tbot.yaml`, "--oneshot"]);
  assertEquals(viaFile.code, 0, viaFile.stderr);

  const viaFlags = await runTbot([
    "start",
    "identity",
    "--destination",
    `file://${s.dir}/flag-out`,
    "--proxy-server",
    s.served.address,
    "--join-method",
    "bound_keypair",
    "--token",
    "from-flags",
    "--registration-secret",
    flagSecret,
    "--storage",
    `${s.dir}/flag-bot`,
    "--ca-pin",
    s.cluster.pin,
    "--oneshot",
  ]);
  assertEquals(viaFlags.code, 0, viaFlags.stderr);
  assert(!viaFlags.stderr.includes(flagSecret), "the secret is never logged");

  assertEquals(await names(`${s.dir}/flag-out`), await names(`${s.dir}/file-out`));
  assertEquals(await names(`${s.dir}/flag-bot`), await names(`${s.dir}/file-bot`));
  assert((await names(`${s.dir}/flag-out`)).includes("tlscert"));
  const [fromFile, fromFlags] = [
    await identityOf(`${s.dir}/file-out`),
    await identityOf(`${s.dir}/flag-out`),
  ];
  assertEquals(fromFlags, fromFile, "certificates for the same bot, from the same CAs");
  assert(fromFlags.subject.includes("2.5.4.3=bot-example"), String(fromFlags.subject));
  assertEquals((await s.cluster.instances("example")).length, 2);
});

Deno.test("cli-only: `tbot configure` prints a tbot.yaml that `tbot start -c` runs", async () => {
  await using s = await setup();
  const secret = await s.token("configured");
  await Deno.writeTextFile(`${s.dir}/secret`, secret);
  const flags = [
    "--destination",
    `${s.dir}/out`,
    "--storage",
    `${s.dir}/bot`,
    "--ca-pin",
    s.cluster.pin,
    "--registration-secret-path",
    `${s.dir}/secret`,
    "--principals",
    "host1.example,10.1.2.3",
  ];
  // Address and token from Teleport's environment variables.
  const env = { TELEPORT_PROXY: s.served.address, TELEPORT_BOT_TOKEN: "configured" };
  const printed = await runTbot(["configure", "ssh-host", ...flags], env);
  assertEquals(printed.code, 0, printed.stderr);
  assert(printed.stdout.startsWith("# tbot config file generated by `configure` command\n"));
  assertStringIncludes(printed.stdout, `proxy_server: ${s.served.address}`);
  assertStringIncludes(printed.stdout, "token: configured");
  assertStringIncludes(printed.stdout, "type: ssh_host");

  const written = await runTbot(
    ["configure", "ssh-host", ...flags, "-o", `${s.dir}/tbot.yaml`],
    env,
  );
  assertEquals(written.code, 0, written.stderr);
  assertEquals(await Deno.readTextFile(`${s.dir}/tbot.yaml`), printed.stdout);
  assertEquals((await Deno.stat(`${s.dir}/tbot.yaml`)).mode! & 0o777, 0o600);

  const run = await runTbot(["start", "-c", `${s.dir}/tbot.yaml`, "--oneshot"]);
  assertEquals(run.code, 0, run.stderr);
  const cert = await parseSshCertificate(await Deno.readTextFile(`${s.dir}/out/ssh_host-cert.pub`));
  assertEquals(cert.certType, "host");
  assertEquals(cert.principals, ["host1.example", "10.1.2.3"]);

  // TBOT_CONFIG: the same file, base64, runs too (a renewal now).
  const b64 = btoa(printed.stdout);
  const again = await runTbot(["start", "--oneshot"], { TBOT_CONFIG: b64 });
  assertEquals(again.code, 0, again.stderr);
});

Deno.test("cli-only: flags win over TELEPORT_* variables; bad flags are one line and exit 2", async () => {
  await using s = await setup();
  const base = ["--destination", `${s.dir}/out`, "--storage", `${s.dir}/bot`];
  const printed = await runTbot(
    ["configure", "identity", ...base, "--auth-server", "127.0.0.1:7", "--token", "flag"],
    {
      TELEPORT_PROXY: "127.0.0.1:9",
      TELEPORT_AUTH_SERVER: "127.0.0.1:8",
      TELEPORT_BOT_TOKEN: "env",
    },
  );
  assertEquals(printed.code, 0, printed.stderr);
  assertStringIncludes(printed.stdout, "auth_server: 127.0.0.1:7");
  assert(!printed.stdout.includes("proxy_server"));
  assertStringIncludes(printed.stdout, "token: flag");
  // Both address variables and no flag: refused (Teleport refuses both addresses), not a guess.
  for (const command of [["configure", "identity", ...base], ["start", "identity", ...base]]) {
    const both = await runTbot(command, {
      TELEPORT_PROXY: "127.0.0.1:9",
      TELEPORT_AUTH_SERVER: "127.0.0.1:8",
      TELEPORT_BOT_TOKEN: "env",
    });
    assertEquals(both.code, 2, both.stderr);
    assertEquals(
      both.stderr,
      "tbot: error [BAD_PARAMETER]: TELEPORT_PROXY and TELEPORT_AUTH_SERVER are both set: unset one (or pass " +
        "--proxy-server or --auth-server, which wins over both)\n",
    );
  }
  const onlyAuth = await runTbot(["configure", "identity", ...base], {
    TELEPORT_AUTH_SERVER: "127.0.0.1:8",
    TELEPORT_BOT_TOKEN: "env",
  });
  assertStringIncludes(onlyAuth.stdout, "auth_server: 127.0.0.1:8");

  const address = ["--proxy-server", "127.0.0.1:9", "--token", "t"];
  const cases: [string[], string][] = [
    [["start", "identity", "--token", "t", ...base], "--proxy-server: required"],
    [["start", "identity", "--proxy-server", "127.0.0.1:9", ...base], "--token: required"],
    [["start", "identity", ...address], "--destination: required"],
    [["start", "ssh-host", ...address, ...base], "--principals: "],
    [["start", "ssh-host", ...address, ...base, "--principals", "a b"], '--principals "a b": '],
    [["start", "workload-identity-x509", ...address, ...base], "--name-selector: "],
    [
      ["configure", "workload-identity-jwt", ...address, ...base, "--name-selector", "w"],
      "--audience: ",
    ],
    [["start", "identity", ...address, ...base, "--audience", "x"], "--audience: does not apply"],
    [["start", "identity", ...address, "--destination", "s3://b"], "--destination: unsupported"],
    [["start", "identity", ...address, ...base, "--join-method", "token"], "--join-method: "],
    [["start", "identity", ...address, ...base, "--certificate-ttl", "x"], "--certificate-ttl: "],
    [["start", "identity", ...address, "--destination", "d", "--storage", "s3://b"], "--storage: "],
    [["start", "identity", ...address, ...base, "--reader-user", "a b"], '--reader-user "a b": '],
    [
      ["start", "identity", ...address, ...base, "--on-renew-signal", "HUP"],
      "--on-renew-pid-file: ",
    ],
    [
      [
        "start",
        "identity",
        ...address,
        ...base,
        "--on-renew-signal",
        "KILL",
        "--on-renew-pid-file",
        "p",
      ],
      "--on-renew-signal: must be one of",
    ],
    [
      [
        "start",
        "identity",
        ...address,
        ...base,
        "--on-renew-exec",
        "x",
        "--on-renew-signal",
        "HUP",
      ],
      "--on-renew-signal: not together with --on-renew-exec",
    ],
  ];
  for (const [args, expected] of cases) {
    const r = await runTbot(args);
    assertEquals(r.code, 2, `${args.join(" ")}\n${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assertStringIncludes(lines[0], expected);
  }
  assertEquals((await s.cluster.instances("example")).length, 0, "nothing joined");
});

Deno.test("cli-only: --join-uri (or TBOT_JOIN_URI) carries address, token and secret", async () => {
  await using s = await setup();
  const secret = await s.token("by-uri");
  const uri = `tbot+auth+bound-keypair://by-uri:${encodeURIComponent(secret)}@${s.served.address}`;
  const base = ["--destination", `${s.dir}/out`, "--storage", `${s.dir}/bot`];
  const printed = await runTbot(["configure", "identity", ...base, "--join-uri", uri]);
  assertEquals(printed.code, 0, printed.stderr);
  // Accepted as Teleport does, with a warning that argv is readable by every local user.
  assertStringIncludes(printed.stderr, "--join-uri carries the registration secret");
  assert(!printed.stderr.includes(secret), printed.stderr);
  // configure keeps the URI as one field; the address, token and secret are not repeated.
  assertStringIncludes(printed.stdout, `join_uri: ${uri}\n`);
  for (const field of ["auth_server", "proxy_server", "token:", "registration_secret"]) {
    assert(!printed.stdout.includes(field), `${field} in\n${printed.stdout}`);
  }
  // With the secret from a file, the URI is written without it and the file is named.
  await Deno.writeTextFile(`${s.dir}/secret`, secret);
  const viaPath = await runTbot([
    "configure",
    "identity",
    ...base,
    "--join-uri",
    uri,
    "--registration-secret-path",
    `${s.dir}/secret`,
  ]);
  assertEquals(viaPath.code, 0, viaPath.stderr);
  assertStringIncludes(viaPath.stdout, `join_uri: tbot+auth+bound-keypair://by-uri@`);
  assertStringIncludes(viaPath.stdout, `registration_secret_path: ${s.dir}/secret`);
  assert(!viaPath.stdout.includes(secret), viaPath.stdout);

  // From the environment, the secret stays off the command line.
  const r = await runTbot(
    ["start", "identity", ...base, "--ca-pin", s.cluster.pin, "--oneshot"],
    { TBOT_JOIN_URI: uri },
  );
  assertEquals(r.code, 0, r.stderr);
  assert(!r.stderr.includes(secret));
  assert(!r.stderr.includes("--join-uri carries"), "no warning for the environment form");
  assert((await names(`${s.dir}/out`)).includes("tlscert"));

  for (
    const [bad, why] of [
      [`tbot+proxy+token://t:${secret}@h:1`, "unsupported join method"],
      [`tbot+proxy+bound-keypair://t:${secret}@h`, "the address needs a port"],
      [`https://t:${secret}@h:1`, "not a joining URI"],
    ]
  ) {
    const b = await runTbot(["start", "identity", ...base, "--join-uri", bad]);
    assertEquals(b.code, 2, b.stderr);
    assertStringIncludes(b.stderr, `--join-uri: ${why}`);
    assert(!b.stderr.includes(secret), "the URI is never echoed");
  }
});

Deno.test("cli-only: join_uri in tbot.yaml or a file, the secret from a file or the environment", async () => {
  await using s = await setup();
  const pins = `  ca_pins: ["${s.cluster.pin}"]\n`;
  const yaml = (uri: string, onboarding: string) =>
    `version: v2\njoin_uri: ${uri}\nonboarding:\n${onboarding}storage:\n  type: directory\n` +
    `  path: ${s.dir}/bot-${crypto.randomUUID()}\noneshot: true\nservices:\n  - type: identity\n` +
    `    destination:\n      type: directory\n      path: ${s.dir}/out-${crypto.randomUUID()}\n`;
  const uriOf = (token: string, secret?: string) =>
    `tbot+auth+bound-keypair://${token}${
      secret ? `:${encodeURIComponent(secret)}` : ""
    }@${s.served.address}`;

  // 1. The URI without its secret; the secret in registration_secret_path.
  const a = await s.token("yaml-path");
  await Deno.writeTextFile(`${s.dir}/a.secret`, a);
  await Deno.writeTextFile(
    `${s.dir}/a.yaml`,
    yaml(
      uriOf("yaml-path"),
      `  bound_keypair:\n    registration_secret_path: ${s.dir}/a.secret\n${pins}`,
    ),
  );
  const ra = await runTbot(["start", "-c", `${s.dir}/a.yaml`]);
  assertEquals(ra.code, 0, ra.stderr);
  // 2. The URI without its secret; the secret in TBOT_REGISTRATION_SECRET.
  const b = await s.token("yaml-env");
  await Deno.writeTextFile(`${s.dir}/b.yaml`, yaml(uriOf("yaml-env"), pins));
  const rb = await runTbot(["start", "-c", `${s.dir}/b.yaml`], { TBOT_REGISTRATION_SECRET: b });
  assertEquals(rb.code, 0, rb.stderr);
  // 3. The whole URI, secret included, in the (0600) file.
  const c = await s.token("yaml-inline");
  await Deno.writeTextFile(`${s.dir}/c.yaml`, yaml(uriOf("yaml-inline", c), pins));
  const rc = await runTbot(["start", "-c", `${s.dir}/c.yaml`]);
  assertEquals(rc.code, 0, rc.stderr);
  // 4. No config file: the whole URI in a (mounted secret) file, named by --join-uri.
  const d = await s.token("uri-file");
  await Deno.writeTextFile(`${s.dir}/join-uri`, uriOf("uri-file", d) + "\n", { mode: 0o600 });
  const rd = await runTbot([
    "start",
    "identity",
    "--join-uri",
    `${s.dir}/join-uri`,
    "--destination",
    `${s.dir}/out-d`,
    "--storage",
    `${s.dir}/bot-d`,
    "--ca-pin",
    s.cluster.pin,
    "--oneshot",
  ]);
  assertEquals(rd.code, 0, rd.stderr);
  for (const [r, secret] of [[ra, a], [rb, b], [rc, c], [rd, d]] as const) {
    assert(!r.stderr.includes(secret), "the secret is never logged");
  }
  const tokens = (await s.cluster.instances("example"))
    .map((i) => i.status.initial_authentication?.join_token).sort();
  assertEquals(tokens, ["uri-file", "yaml-env", "yaml-inline", "yaml-path"]);
  await Deno.writeTextFile(`${s.dir}/empty-uri`, "\n");
  const empty = await runTbot(
    ["start", "identity", "--destination", "o", "--storage", "memory://"],
    {
      TBOT_JOIN_URI: `${s.dir}/empty-uri`,
    },
  );
  // A bad URI is named by where it came from, never echoed.
  await Deno.writeTextFile(`${s.dir}/bad-uri`, `tbot+proxy+bound-keypair://t:${d}@h\n`);
  for (
    const [env, args, source] of [
      [{ TBOT_JOIN_URI: `tbot+proxy+bound-keypair://t:${d}@h` }, [], "TBOT_JOIN_URI"],
      [{ TBOT_JOIN_URI: `${s.dir}/bad-uri` }, [], `TBOT_JOIN_URI (${s.dir}/bad-uri)`],
      [{}, ["--join-uri", `${s.dir}/bad-uri`], `--join-uri (${s.dir}/bad-uri)`],
    ] as const
  ) {
    const r = await runTbot(
      ["start", "identity", "--destination", "o", "--storage", "memory://", ...args],
      env,
    );
    assertEquals(r.code, 2, r.stderr);
    assert(
      r.stderr.startsWith(`tbot: error [BAD_PARAMETER]: ${source}: the address needs a port`),
      r.stderr,
    );
    assert(!r.stderr.includes(d), "never echoed");
  }
  assertEquals([empty.code, empty.stderr], [
    2,
    `tbot: error [BAD_PARAMETER]: TBOT_JOIN_URI: the file ${s.dir}/empty-uri is empty\n`,
  ]);

  // A field the URI fills may not be set beside it; the error names the field and line, not the URI.
  await Deno.writeTextFile(
    `${s.dir}/bad.yaml`,
    yaml(uriOf("t", c), `  token: other\n${pins}`),
  );
  const bad = await runTbot(["start", "-c", `${s.dir}/bad.yaml`]);
  assertEquals(bad.code, 1, bad.stderr);
  assertStringIncludes(
    bad.stderr,
    `${s.dir}/bad.yaml:4: onboarding.token: not together with join_uri`,
  );
  assert(!bad.stderr.includes(c), "the URI is never echoed");
});

Deno.test({
  name: "cli-only: --reader-* and --on-renew-* do what the config file's readers and on_renew do",
  ignore: ignoreWithout("cli-only readers test", "setfacl", "getfacl"),
  async fn() {
    await using s = await setup();
    const fileSecret = await s.token("hooks-file");
    const flagSecret = await s.token("hooks-flags");
    // The hook proves it ran, for which output and where: it writes a file of its own.
    const script = (tag: string) =>
      `echo "$KEYBOUND_OUTPUT_NAME $KEYBOUND_OUTPUT_DIR" > ${s.dir}/hook-${tag}`;
    const yaml = tbotYaml({
      address: s.served.address,
      storage: `${s.dir}/file-bot`,
      pins: [s.cluster.pin],
      secret: fileSecret,
    }).replace("token: example", "token: hooks-file").replace(
      "outputs: []",
      [
        "outputs:",
        "  - type: identity",
        "    destination:",
        "      type: directory",
        `      path: ${s.dir}/file-out`,
        "      readers: [{user: nobody}, {group: root}]",
        "    on_renew:",
        `      exec: [sh, -c, '${script("file")}']`,
        "      timeout: 5s",
      ].join("\n"),
    );
    await Deno.writeTextFile(`${s.dir}/tbot.yaml`, yaml);
    const viaFile = await runTbot(["start", "-c", `${s.dir}/tbot.yaml`, "--oneshot"]);
    assertEquals(viaFile.code, 0, viaFile.stderr);

    const modeFlags = [
      "--destination",
      `${s.dir}/flag-out`,
      "--reader-user",
      "nobody",
      "--reader-group",
      "root",
      "--on-renew-exec",
      "sh",
      "--on-renew-exec=-c",
      "--on-renew-exec",
      script("flags"),
      "--on-renew-timeout",
      "5s",
    ];
    const common = ["--proxy-server", s.served.address, "--ca-pin", s.cluster.pin];
    const viaFlags = await runTbot([
      "start",
      "identity",
      ...modeFlags,
      ...common,
      "--token",
      "hooks-flags",
      "--registration-secret",
      flagSecret,
      "--storage",
      `${s.dir}/flag-bot`,
      "--oneshot",
    ]);
    assertEquals(viaFlags.code, 0, viaFlags.stderr);

    for (const [r, out] of [[viaFile, "file-out"], [viaFlags, "flag-out"]] as const) {
      assertStringIncludes(r.stderr, "readers=user:nobody,group:root method=posix_acl");
      assertStringIncludes(r.stderr, "reload hook ran");
      const tag = out === "file-out" ? "file" : "flags";
      assertEquals(
        await Deno.readTextFile(`${s.dir}/hook-${tag}`),
        `identity-output-1 ${s.dir}/${out}\n`,
      );
    }
    assertEquals(await names(`${s.dir}/flag-out`), await names(`${s.dir}/file-out`));
    for (const f of await names(`${s.dir}/file-out`)) {
      const acl = async (dir: string) => {
        const o = await new Deno.Command("getfacl", { args: ["-cp", `${s.dir}/${dir}/${f}`] })
          .output();
        return new TextDecoder().decode(o.stdout);
      };
      assertEquals(await acl("flag-out"), await acl("file-out"), `the ACL of ${f}`);
    }
    // configure writes the same readers and hook as the file's, which it reads back the same way.
    const printed = await runTbot([
      "configure",
      "identity",
      ...modeFlags,
      ...common,
      "--token",
      "t",
    ]);
    assertEquals(printed.code, 0, printed.stderr);
    const [fromFile, fromConfigure] = [yaml, printed.stdout].map((text) => {
      const service = parseConfig(text).services[0];
      return { readers: service.destination.readers, on_renew: service.on_renew };
    });
    assertEquals(fromConfigure, {
      ...fromFile,
      on_renew: { exec: ["sh", "-c", script("flags")], timeout: 5000 },
    });
  },
});
