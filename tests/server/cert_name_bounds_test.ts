/**
 * Names that go into bot certificate subjects against X.509's bound (64
 * characters for a common name and an organization name): the admin write
 * refuses a new bot or role whose name could not fit, a bot at the bound gets
 * a certificate openssl reads with a 64-character CN, and a bot stored with a
 * longer name before the bound keeps working.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { ignoreWithout } from "../_tools.ts";
import { certificatesFromPem, certificateToPem } from "../../src/pki/mod.ts";
import type { JoinResult } from "../../src/protocol/messages.ts";
import { MAX_NEW_BOT_NAME, X509_NAME_UPPER_BOUND } from "../../src/protocol/subject.ts";
import { type Bot, type Role, SSH_CERT_MAX_PRINCIPALS } from "../../src/resources/schemas.ts";
import { createLogger } from "../../src/util/log.ts";
import { getResource, putResource } from "../../src/server/resources/mod.ts";
import type { ServerContext } from "../../src/server/context.ts";
import {
  type Harness,
  onboardedBot,
  putBot,
  putResource as putStored,
  rejectsCode,
  startHarness,
} from "./_join_fixture.ts";

const actor = { user: "admin" };

function bot(name: string, roles: string[] = []): Bot {
  return { kind: "bot", version: "v1", metadata: { name }, spec: { roles, traits: [] } };
}

function role(name: string, logins?: string[]): Role {
  return {
    kind: "role",
    version: "v7",
    metadata: { name },
    spec: logins ? { allow: { logins } } : {},
  };
}

/** A name of `n` characters. */
const nameOf = (n: number, c = "n") => c.repeat(n);

/** The subject's attributes as openssl prints them, one `type=value` per line. */
async function opensslSubject(dir: string, result: JoinResult): Promise<[string, string][]> {
  const path = `${dir}/leaf.pem`;
  await Deno.writeTextFile(path, result.certificates.tls_cert);
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-in", path, "-noout", "-subject", "-nameopt", "sep_multiline,sname,utf8"],
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\n").slice(1).filter((l) => l.trim())
    .map((l) => {
      const at = l.indexOf("=");
      return [l.slice(0, at).trim(), l.slice(at + 1)];
    });
}

/** openssl's `verify -x509_strict` of the join's certificate under the CAs it came with. */
async function opensslVerify(dir: string, result: JoinResult): Promise<string> {
  await Deno.writeTextFile(`${dir}/leaf.pem`, result.certificates.tls_cert);
  await Deno.writeTextFile(
    `${dir}/ca.pem`,
    result.certificates.tls_ca_certs.flatMap(certificatesFromPem).map(certificateToPem).join(""),
  );
  const out = await new Deno.Command("openssl", {
    args: ["verify", "-x509_strict", "-CAfile", `${dir}/ca.pem`, `${dir}/leaf.pem`],
  }).output();
  return new TextDecoder().decode(out.stdout).trim() + new TextDecoder().decode(out.stderr);
}

async function withHarness(fn: (h: Harness, dir: string) => Promise<void>) {
  const h = await startHarness();
  const dir = await Deno.makeTempDir();
  try {
    await fn(h, dir);
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function refused(ctx: ServerContext, r: Bot | Role, mode: "create" | "upsert" = "create") {
  return rejectsCode(() => putResource(ctx, r, mode, actor), "BAD_PARAMETER");
}

Deno.test({
  name: "a new bot or role whose name cannot fit its certificates' subject is refused",
  ignore: ignoreWithout("bot certificates read by openssl", "openssl"),
  fn: () =>
    withHarness(async (h, dir) => {
      assertEquals(MAX_NEW_BOT_NAME, 60);
      const e = await refused(h.ctx, bot(nameOf(MAX_NEW_BOT_NAME + 1)));
      assertEquals(e.details?.path, "metadata.name");
      assertEquals(
        e.message,
        "metadata.name: 61 characters: a new bot's name is at most 60 characters (its " +
          `certificates' common name is "bot-" and the name, and X.509 bounds a common name at 64)`,
      );
      assertEquals(await getResource(h.ctx, "bot", nameOf(61)), null, "nothing stored");
      const r = await refused(h.ctx, role(nameOf(X509_NAME_UPPER_BOUND + 1, "r")));
      assertEquals(r.details?.path, "metadata.name");
      assertStringIncludes(r.message, "65 characters: a role a bot carries is at most 64");

      // At the bound: both are accepted, and openssl reads 64-character CN and O.
      const role64 = nameOf(X509_NAME_UPPER_BOUND, "r");
      await putResource(h.ctx, role(role64), "create", actor);
      const name60 = nameOf(MAX_NEW_BOT_NAME);
      await putResource(h.ctx, bot(name60, [role64]), "create", actor);
      // A role that does not fit, added to an existing bot, is refused too.
      const added = await refused(h.ctx, bot(name60, [role64, nameOf(65, "x")]), "upsert");
      assertEquals(added.details?.path, "spec.roles[1]");

      const b = await onboardedBot(h, "tok", { botName: name60 });
      const subject = await opensslSubject(dir, b.last!);
      assertEquals(subject.filter(([t]) => t === "CN"), [["CN", `bot-${name60}`]]);
      assertEquals(subject.filter(([t]) => t === "O"), [["O", `bot-${name60}`], ["O", role64]]);
      for (const [t, v] of subject) {
        if (t === "CN" || t === "O") assertEquals(v.length, X509_NAME_UPPER_BOUND, t);
      }
      assertEquals(await opensslVerify(dir, b.last!), `${dir}/leaf.pem: OK`);
    }),
});

Deno.test({
  name: "a bot stored with a longer name before the bound is readable, writable and joins",
  ignore: ignoreWithout("bot certificates read by openssl", "openssl"),
  fn: () =>
    withHarness(async (h, dir) => {
      // What an older version could store: a 253-character bot carrying a 100-character role.
      const long = nameOf(253);
      const longRole = nameOf(100, "r");
      await putBot(h.ctx, long, { roles: [longRole] });
      assertEquals((await getResource(h.ctx, "bot", long))?.resource.spec.roles, [longRole]);
      // Written back with what it carries, plus a role that fits: accepted.
      await putResource(h.ctx, bot(long, [longRole, "ops"]), "upsert", actor);
      await refused(h.ctx, bot(long, [longRole, nameOf(65, "x")]), "upsert");

      // Its joins go on: onboarding, then a refresh that authenticates with the 257-character
      // CN. openssl reads and verifies the certificate (3.0 does not check the bound).
      const lines: string[] = [];
      h.ctx.log = createLogger({ write: (l) => lines.push(l) });
      const b = await onboardedBot(h, "tok", { botName: long });
      const cn = `bot-${long}`;
      assertEquals((await b.join()).bot_name, long);
      const subject = await opensslSubject(dir, b.last!);
      assertEquals(subject.find(([t]) => t === "CN"), ["CN", cn]);
      assertEquals(subject.filter(([t]) => t === "O").map(([, v]) => v), [cn, longRole, "ops"]);
      assertEquals(await opensslVerify(dir, b.last!), `${dir}/leaf.pem: OK`);

      // The operator is told once per name, not at each of its renewals: the bot's name and
      // the long role (another bot carrying that role adds no line for it), never the role that
      // fits.
      await putBot(h.ctx, "other", { roles: [longRole] });
      await (await onboardedBot(h, "tok-other", { botName: "other" })).join();
      await b.join();
      const warned = lines.filter((l) => l.includes("is longer than"));
      assertEquals(warned.length, 2, lines.join("\n"));
      assertStringIncludes(warned[0], "a stored bot's name is longer than a new bot's may be");
      assertStringIncludes(warned[0], `bot=${long} length=253 max=60`);
      assertStringIncludes(warned[1], "a stored role's name is longer than a certificate carries");
      assertStringIncludes(warned[1], `role=${longRole} length=100 max=64 bot=${long}`);
    }),
});

/** `n` distinct logins starting with `prefix`. */
const loginsOf = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** What `ssh-keygen -L` says of an SSH certificate line. */
async function sshKeygenReads(dir: string, cert: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/id-cert.pub`, cert + "\n");
  const out = await new Deno.Command("ssh-keygen", { args: ["-L", "-f", `${dir}/id-cert.pub`] })
    .output();
  return out.success ? "ok" : new TextDecoder().decode(out.stderr).trim();
}

Deno.test({
  name: "logins past what one SSH certificate carries are refused where a write brings them in",
  ignore: ignoreWithout("bot SSH certificates read by OpenSSH", "ssh-keygen"),
  fn: () =>
    withHarness(async (h, dir) => {
      assertEquals(SSH_CERT_MAX_PRINCIPALS, 256);
      const e = await refused(h.ctx, role("many", loginsOf(257, "u")));
      assertEquals(e.details?.path, "spec.allow.logins");
      assertEquals(
        e.message,
        "spec.allow.logins: 257 distinct logins: at most 256 distinct logins (each is a principal " +
          "of the bot's SSH certificates, and OpenSSH reads a certificate with at most 256)",
      );
      // Templates are not principals, repeats count once.
      const full = [...loginsOf(256, "u"), "u0", "{{internal.logins}}"];
      await putResource(h.ctx, role("full", full), "create", actor);
      const traits = [{ name: "logins", values: loginsOf(257, "t") }];
      const b = await refused(h.ctx, { ...bot("b"), spec: { roles: [], traits } });
      assertEquals(b.details?.path, "spec.traits");

      // A role stored earlier with more is written back as it is; a change to it is held.
      await putStored(h.ctx, "role", role("old", loginsOf(300, "o")));
      await putResource(h.ctx, { ...role("old", loginsOf(300, "o")) }, "upsert", actor);
      await refused(h.ctx, role("old", loginsOf(301, "o")), "upsert");

      // Two roles within the bound each, 400 together: the join goes on (its X.509 identity
      // is unaffected) with a warning, and OpenSSH cannot read that SSH certificate.
      const lines: string[] = [];
      h.ctx.log = createLogger({ write: (l) => lines.push(l) });
      await putResource(h.ctx, role("a", loginsOf(200, "a")), "create", actor);
      await putResource(h.ctx, role("c", loginsOf(200, "c")), "create", actor);
      await putResource(h.ctx, bot("wide", ["a", "c"]), "create", actor);
      const wide = await onboardedBot(h, "tok-wide", { botName: "wide" });
      await wide.join(); // a renewal: told once per bot and count, not at each issuance
      assertEquals(
        lines.filter((l) => l.includes("more principals than OpenSSH reads")).length,
        1,
        lines.join("\n"),
      );
      assertStringIncludes(lines.join("\n"), "principals=400");
      assertStringIncludes(
        await sshKeygenReads(dir, wide.last!.certificates.ssh_cert),
        "invalid format",
      );
      // At the bound, OpenSSH reads it, and nothing is logged.
      lines.length = 0;
      await putResource(h.ctx, bot("fits", ["full"]), "create", actor);
      const fits = await onboardedBot(h, "tok-fits", { botName: "fits" });
      assertEquals(await sshKeygenReads(dir, fits.last!.certificates.ssh_cert), "ok");
      assertEquals(lines.filter((l) => l.includes("principals")), []);
    }),
});
