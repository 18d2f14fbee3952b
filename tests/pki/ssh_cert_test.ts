/**
 * OpenSSH certificates, checked against the real `ssh-keygen` in both
 * directions: certificates we issue are read by ssh-keygen, and certificates
 * ssh-keygen issues are read by us.
 */
import assert from "node:assert/strict";
import { generateKeyPair, type KeyAlgorithm, publicKeysEqual } from "../../src/crypto/keys.ts";
import { publicKeyToSshBlob, sshFingerprint, toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { BadParameterError } from "../../src/errors.ts";
import { fromBase64, toBase64 } from "../../src/util/encoding.ts";
import {
  DEFAULT_USER_EXTENSIONS,
  issueSshCertificate,
  type IssueSshCertificateOptions,
  parseSshCertificate,
  verifySshCertificate,
} from "../../src/pki/mod.ts";
import { ignoreWithout } from "../_tools.ts";

/** A test that runs ssh-keygen: ignored, saying why, outside CI without it. */
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, {
    ignore: ignoreWithout("OpenSSH certificate tests checked by ssh-keygen", "ssh-keygen"),
  }, fn);

async function run(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { TZ: "UTC" },
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** ssh-keygen prints validity in local time without a zone; tests run it with TZ=UTC. */
function sshTime(d: Date): string {
  return d.toISOString().slice(0, 19);
}

/** Flips one bit of a certificate line's blob at `offset` (negative: from the end). */
function flipByte(line: string, offset: number): string {
  const [type, b64, ...rest] = line.split(" ");
  const blob = fromBase64(b64);
  blob[offset < 0 ? blob.length + offset : offset] ^= 0x01;
  return [type, toBase64(blob), ...rest].join(" ");
}

/** Offset of the first nonce byte: after string(type) and the nonce's length. */
function nonceOffset(line: string): number {
  return 4 + line.split(" ")[0].length + 4;
}

async function baseOptions(caAlg: KeyAlgorithm, subjectAlg: KeyAlgorithm) {
  const ca = await generateKeyPair(caAlg);
  const subject = await generateKeyPair(subjectAlg);
  const opts: IssueSshCertificateOptions = {
    caPrivateKey: ca.privateKey,
    caPublicKey: ca.publicKey,
    publicKey: subject.publicKey,
    certType: "user",
    keyId: `bot-${caAlg}-${subjectAlg}`,
    principals: ["root", "deploy", "-teleport-internal-join"],
    validAfter: new Date("2025-03-04T05:06:07Z"),
    validBefore: new Date("2031-08-09T10:11:12Z"),
    serial: 0xfedcba9876543210n,
  };
  return { ca, subject, opts };
}

const combos: [KeyAlgorithm, KeyAlgorithm][] = [
  ["EdDSA", "ES256"],
  ["EdDSA", "EdDSA"],
  ["ES256", "EdDSA"],
  ["ES256", "ES256"],
];

for (const [caAlg, subjectAlg] of combos) {
  test(`ssh cert: ${caAlg} CA, ${subjectAlg} user key, read by ssh-keygen -L`, async () => {
    await withTempDir(async (dir) => {
      const { ca, subject, opts } = await baseOptions(caAlg, subjectAlg);
      const line = await issueSshCertificate(opts);
      assert.ok(!line.endsWith("\n"));
      const certType = subjectAlg === "EdDSA"
        ? "ssh-ed25519-cert-v01@openssh.com"
        : "ecdsa-sha2-nistp256-cert-v01@openssh.com";
      assert.ok(line.startsWith(`${certType} `));
      assert.ok(line.endsWith(` ${opts.keyId}`));
      await Deno.writeTextFile(`${dir}/cert.pub`, line + "\n");
      await Deno.writeTextFile(`${dir}/ca.pub`, (await toAuthorizedKey(ca.publicKey)) + "\n");

      const list = await run("ssh-keygen", ["-L", "-f", `${dir}/cert.pub`]);
      assert.equal(list.code, 0, list.stderr);
      const out = list.stdout;
      assert.match(out, new RegExp(`Type: ${certType} user certificate`));
      assert.match(out, new RegExp(`Key ID: "${opts.keyId}"`));
      assert.match(out, new RegExp(`Serial: ${opts.serial}\\n`));
      assert.match(
        out,
        new RegExp(`Valid: from ${sshTime(opts.validAfter)} to ${sshTime(opts.validBefore)}`),
      );
      assert.match(out, /Principals: \n\s+root\n\s+deploy\n\s+-teleport-internal-join\n/);
      assert.match(out, /Critical Options: \(none\)/);
      assert.match(
        out,
        /Extensions: \n\s+permit-agent-forwarding\n\s+permit-port-forwarding\n\s+permit-pty\n\s+permit-user-rc\n/,
      );
      assert.ok(!out.includes("X11"));

      const caFp = (await run("ssh-keygen", ["-lf", `${dir}/ca.pub`])).stdout.split(" ")[1];
      assert.equal(caFp, await sshFingerprint(await publicKeyToSshBlob(ca.publicKey)));
      assert.match(out, new RegExp(`Signing CA: (ED25519|ECDSA) ${caFp.replace(/\+/g, "\\+")} `));
      const subjectFp = await sshFingerprint(await publicKeyToSshBlob(subject.publicKey));
      assert.ok(
        out.includes(
          `Public key: ${subjectAlg === "EdDSA" ? "ED25519" : "ECDSA"}-CERT ${subjectFp}`,
        ),
      );

      const parsed = await parseSshCertificate(line);
      assert.equal(await verifySshCertificate(parsed), true);
      assert.equal(parsed.serial, opts.serial);
      assert.deepEqual(parsed.principals, opts.principals);
      assert.equal(parsed.validAfter.getTime(), opts.validAfter.getTime());
      assert.equal(parsed.validBefore.getTime(), opts.validBefore.getTime());
      assert.deepEqual(parsed.extensions, { ...DEFAULT_USER_EXTENSIONS });
      assert.ok(await publicKeysEqual(parsed.publicKey, subject.publicKey));
      assert.ok(await publicKeysEqual(parsed.signatureKey, ca.publicKey));

      // ssh-keygen checks the CA signature when it loads a certificate.
      const tampered = flipByte(line, nonceOffset(line));
      await Deno.writeTextFile(`${dir}/bad.pub`, tampered + "\n");
      assert.notEqual((await run("ssh-keygen", ["-L", "-f", `${dir}/bad.pub`])).code, 0);
      assert.equal(await verifySshCertificate(await parseSshCertificate(tampered)), false);
    });
  });
}

test("ssh cert: host certificate, options sorted and valued", async () => {
  await withTempDir(async (dir) => {
    const { opts } = await baseOptions("EdDSA", "EdDSA");
    const host = await issueSshCertificate({
      ...opts,
      certType: "host",
      principals: ["node.example.com"],
    });
    await Deno.writeTextFile(`${dir}/host.pub`, host + "\n");
    const out = (await run("ssh-keygen", ["-L", "-f", `${dir}/host.pub`])).stdout;
    assert.match(out, /host certificate/);
    assert.match(out, /Extensions: \(none\)/);
    assert.equal((await parseSshCertificate(host)).certType, "host");

    const user = await issueSshCertificate({
      ...opts,
      criticalOptions: { "source-address": "10.0.0.0/8,192.168.1.1", "force-command": "/bin/true" },
      extensions: { "permit-pty": "", "login@keybound.test": "alice", "permit-X11-forwarding": "" },
    });
    await Deno.writeTextFile(`${dir}/user.pub`, user + "\n");
    const u = (await run("ssh-keygen", ["-L", "-f", `${dir}/user.pub`])).stdout;
    assert.match(
      u,
      /Critical Options: \n\s+force-command \/bin\/true\n\s+source-address 10\.0\.0\.0\/8,192\.168\.1\.1\n/,
    );
    // Byte order ('l' < 'p', 'X' < 'p'); a valued extension's data is itself an SSH string.
    const alice = "00000005" +
      Array.from(new TextEncoder().encode("alice"), (c) => c.toString(16)).join("");
    assert.match(
      u,
      new RegExp(
        `Extensions: \\n\\s+login@keybound\\.test UNKNOWN OPTION: ${alice} \\(len 9\\)\\n` +
          `\\s+permit-X11-forwarding\\n\\s+permit-pty\\n`,
      ),
    );
    const p = await parseSshCertificate(user);
    assert.deepEqual(p.criticalOptions, {
      "force-command": "/bin/true",
      "source-address": "10.0.0.0/8,192.168.1.1",
    });
    assert.deepEqual(p.extensions, {
      "permit-X11-forwarding": "",
      "login@keybound.test": "alice",
      "permit-pty": "",
    });
    assert.equal(await verifySshCertificate(p), true);
  });
});

async function sshKeygenCa(dir: string, name: string, type: string[]) {
  const gen = await run("ssh-keygen", ["-q", ...type, "-N", "", "-C", "", "-f", `${dir}/${name}`]);
  assert.equal(gen.code, 0, gen.stderr);
}

test("ssh cert: certificates signed by ssh-keygen parse and verify", async () => {
  await withTempDir(async (dir) => {
    await sshKeygenCa(dir, "ca", ["-t", "ed25519"]);
    await sshKeygenCa(dir, "ca256", ["-t", "ecdsa", "-b", "256"]);
    await sshKeygenCa(dir, "user", ["-t", "ecdsa", "-b", "256"]);
    const ours = await generateKeyPair("EdDSA");
    await Deno.writeTextFile(`${dir}/ours.pub`, (await toAuthorizedKey(ours.publicKey)) + "\n");

    const cases = [
      { ca: "ca", key: "user" },
      { ca: "ca256", key: "user" },
      { ca: "ca", key: "ours" },
      { ca: "ca256", key: "ours" },
    ];
    for (const { ca, key } of cases) {
      const sign = await run("ssh-keygen", [
        "-q",
        "-s",
        `${dir}/${ca}`,
        "-I",
        `id-${ca}-${key}`,
        "-n",
        "p1,p2",
        "-z",
        "42",
        "-V",
        "20250101000000:20300102030405",
        "-O",
        "force-command=ls -l",
        `${dir}/${key}.pub`,
      ]);
      assert.equal(sign.code, 0, sign.stderr);
      const line = (await Deno.readTextFile(`${dir}/${key}-cert.pub`)).trim();
      const p = await parseSshCertificate(line);
      assert.equal(await verifySshCertificate(p), true, `${ca}/${key}`);
      assert.equal(p.keyId, `id-${ca}-${key}`);
      assert.deepEqual(p.principals, ["p1", "p2"]);
      assert.equal(p.serial, 42n);
      assert.equal(p.certType, "user");
      assert.equal(p.validAfter.toISOString(), "2025-01-01T00:00:00.000Z");
      assert.equal(p.validBefore.toISOString(), "2030-01-02T03:04:05.000Z");
      assert.deepEqual(p.criticalOptions, { "force-command": "ls -l" });
      assert.ok("permit-X11-forwarding" in p.extensions && "permit-pty" in p.extensions);
      const caFp = (await run("ssh-keygen", ["-lf", `${dir}/${ca}.pub`])).stdout.split(" ")[1];
      assert.equal(await sshFingerprint(p.signatureKeyBlob), caFp);
      if (key === "ours") assert.ok(await publicKeysEqual(p.publicKey, ours.publicKey));

      for (const off of [nonceOffset(line), -1, -40]) {
        const bad = await parseSshCertificate(flipByte(line, off));
        assert.equal(await verifySshCertificate(bad), false, `${ca}/${key} flipped at ${off}`);
      }
    }
  });
});

test("ssh cert: always:forever validity maps to the Date range ends", async () => {
  await withTempDir(async (dir) => {
    await sshKeygenCa(dir, "ca", ["-t", "ed25519"]);
    await sshKeygenCa(dir, "host", ["-t", "ed25519"]);
    const sign = await run("ssh-keygen", [
      "-q",
      "-s",
      `${dir}/ca`,
      "-h",
      "-I",
      "h",
      `${dir}/host.pub`,
    ]);
    assert.equal(sign.code, 0, sign.stderr);
    const p = await parseSshCertificate(await Deno.readTextFile(`${dir}/host-cert.pub`));
    assert.equal(p.certType, "host");
    assert.deepEqual(p.principals, []);
    assert.equal(p.validAfter.getTime(), 0);
    assert.equal(p.validBefore.getTime(), 8.64e15);
    assert.equal(await verifySshCertificate(p), true);
  });
});

Deno.test("ssh cert: bad options and malformed lines throw BadParameterError", async () => {
  const { opts } = await baseOptions("EdDSA", "ES256");
  const other = await generateKeyPair("EdDSA");
  for (
    const bad of [
      { ...opts, principals: [] },
      { ...opts, principals: [""] },
      { ...opts, validBefore: opts.validAfter },
      { ...opts, validAfter: new Date(NaN) },
      { ...opts, serial: -1n },
      { ...opts, serial: 1n << 64n },
      { ...opts, caPublicKey: other.publicKey, selfCheck: true },
    ]
  ) await assert.rejects(issueSshCertificate(bad), BadParameterError);
  // The self-check is opt-in: without it the mismatched pair yields a certificate no one accepts.
  const unchecked = await parseSshCertificate(
    await issueSshCertificate({ ...opts, caPublicKey: other.publicKey }),
  );
  assert.equal(await verifySshCertificate(unchecked), false);

  const line = await issueSshCertificate(opts);
  const [type, b64] = line.split(" ");
  const blob = fromBase64(b64);
  const malformed = [
    "",
    "ssh-ed25519-cert-v01@openssh.com",
    `ssh-rsa-cert-v01@openssh.com ${b64}`,
    `ssh-ed25519-cert-v01@openssh.com ${b64}`, // outer type disagrees with the blob
    `${type} !!!notbase64`,
    `${type} ${toBase64(blob.subarray(0, blob.length - 5))}`,
    `${type} ${toBase64(new Uint8Array([...blob, 0]))}`,
    await toAuthorizedKey(opts.publicKey),
  ];
  for (const m of malformed) {
    await assert.rejects(parseSshCertificate(m), BadParameterError, m.slice(0, 40));
  }
  assert.equal(await verifySshCertificate(await parseSshCertificate(line)), true);
});

Deno.test("ssh cert: defaults give a fresh nonce and serial per certificate", async () => {
  const { opts } = await baseOptions("ES256", "EdDSA");
  const { serial: _, ...noSerial } = opts;
  const a = await parseSshCertificate(await issueSshCertificate(noSerial));
  const b = await parseSshCertificate(await issueSshCertificate(noSerial));
  assert.equal(a.nonce.length, 32);
  assert.notDeepEqual(a.nonce, b.nonce);
  assert.notEqual(a.serial, b.serial);
  const fixed = new Uint8Array(32).fill(7);
  const c = await parseSshCertificate(await issueSshCertificate({ ...opts, nonce: fixed }));
  assert.deepEqual(c.nonce, fixed);
  assert.equal(await verifySshCertificate(c), true);
});

Deno.test("ssh cert: a given subject blob is embedded as the key; a blob of another type is refused", async () => {
  const ca = await generateKeyPair("EdDSA");
  const subject = await generateKeyPair("ES256");
  const other = await generateKeyPair("EdDSA");
  const base = {
    caPrivateKey: ca.privateKey,
    caPublicKey: ca.publicKey,
    publicKey: subject.publicKey,
    certType: "user" as const,
    keyId: "bot-x",
    principals: ["x"],
    validAfter: new Date(Date.now() - 60_000),
    validBefore: new Date(Date.now() + 3600_000),
    nonce: new Uint8Array(32),
    serial: 7n,
  };
  const exported = await issueSshCertificate(base);
  const given = await issueSshCertificate({
    ...base,
    publicKeyBlob: await publicKeyToSshBlob(subject.publicKey),
  });
  assert.equal(given, exported);
  const parsed = await parseSshCertificate(given);
  assert.ok(await publicKeysEqual(parsed.publicKey, subject.publicKey));
  assert.ok(await verifySshCertificate(parsed));
  const otherBlob = await publicKeyToSshBlob(other.publicKey);
  await assert.rejects(
    () => issueSshCertificate({ ...base, publicKeyBlob: otherBlob }),
    BadParameterError,
  );
});
