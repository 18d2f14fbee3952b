import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "../_assert.ts";
import { parseConfig } from "../../src/agent/config/load.ts";
import { ReadinessRegistry } from "../../src/agent/readiness.ts";
import { ConfigError } from "../../src/errors.ts";
import { certificatesFromPem, parseCertificate } from "../../src/pki/mod.ts";
import { SUBJECT_OIDS } from "../../src/protocol/subject.ts";
import { addBot, runTbot, startCluster } from "../interop/_interop_fixture.ts";
import { FakeClock } from "./_fake_clock.ts";
import { waitUntil } from "../_wait.ts";

const HEAD = [
  "version: v2",
  "auth_server: auth.example.com:3025",
  "onboarding: {join_method: bound_keypair, token: t}",
  "storage: {type: memory}",
].join("\n");

Deno.test("config: an identity output takes credential_ttl and renewal_interval only together", () => {
  const c = parseConfig(`${HEAD}
services:
  - type: identity
    destination: {type: directory, path: /opt/id}
    credential_ttl: 10m
    renewal_interval: 5m
`);
  const id = c.services[0] as { credential_ttl?: number; renewal_interval?: number };
  assertEquals([id.credential_ttl, id.renewal_interval], [600_000, 300_000]);
  let refused: unknown;
  try {
    parseConfig(
      `${HEAD}\nservices:\n  - type: identity\n    destination: {type: directory, path: /x}\n    renewal_interval: 5m`,
      "tbot.yaml",
    );
  } catch (e) {
    refused = e;
  }
  assert(refused instanceof ConfigError, "a lone renewal_interval is refused");
  assertEquals(refused.details?.path, "services[0].credential_ttl");
  assertStringIncludes(refused.message, "must be set together");
});

function readCert(path: string) {
  return parseCertificate(certificatesFromPem(Deno.readTextFileSync(path))[0]);
}

function content(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

Deno.test({
  name:
    "daemon: an identity output with credential_ttl writes certificates of its own key and lifetime, on its own loop",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "keybound-idout-" });
    const cluster = await startCluster("idout.example.com");
    const clock = new FakeClock(new Date());
    const readiness = new ReadinessRegistry(() => clock.now());
    const stop = new AbortController();
    let running: Promise<void> | undefined;
    try {
      const secret = await addBot(cluster.ctx, "ops", { logins: ["root"] });
      running = runTbot(
        cluster,
        "ops",
        secret,
        [
          "  - type: identity",
          "    name: bot-copy",
          `    destination: {type: directory, path: ${dir}/bot}`,
          "  - type: identity",
          "    name: own",
          `    destination: {type: directory, path: ${dir}/own}`,
          "    credential_ttl: 10m",
          "    renewal_interval: 5m",
        ].join("\n"),
        { oneshot: false, clock, readiness, signal: stop.signal },
      );
      await waitUntil(
        () => content(`${dir}/own/ssh_config`) !== "" && content(`${dir}/bot/ssh_config`) !== "",
        "first write",
      );
      // Each output marks itself healthy only after its write's promise settles, which can be
      // a turn after its last file appeared on disk: wait for both rather than assert the second.
      await waitUntil(
        () =>
          readiness.service("own")?.status === "healthy" &&
          readiness.service("bot-copy")?.status === "healthy",
        "both outputs healthy",
      );

      const own = readCert(`${dir}/own/tlscert`);
      const bot = readCert(`${dir}/bot/tlscert`);
      const lifetime = (c: typeof own) => c.notAfter.getTime() - c.notBefore.getTime();
      // Validity starts 60 s before issue.
      assert(Math.abs(lifetime(own) - 11 * 60_000) <= 2_000, `own lifetime ${lifetime(own)} ms`);
      assert(Math.abs(lifetime(bot) - 61 * 60_000) <= 2_000, `bot lifetime ${lifetime(bot)} ms`);
      assertNotEquals(content(`${dir}/own/key`), content(`${dir}/bot/key`));
      assertNotEquals(content(`${dir}/own/key.pub`), content(`${dir}/bot/key.pub`));
      assertStringIncludes(content(`${dir}/own/key-cert.pub`), "ecdsa-sha2-nistp256-cert-v01");
      assertEquals(content(`${dir}/own/tlscacerts`), content(`${dir}/bot/tlscacerts`));
      assertEquals(content(`${dir}/own/sshcacerts`), content(`${dir}/bot/sshcacerts`));
      const usage = own.subject.find((a) => a.oid === SUBJECT_OIDS.usage)?.value;
      assertEquals(usage, "output");
      assert(!own.subject.some((a) => a.oid === SUBJECT_OIDS.botInstanceId), "no instance id");

      // 5 minutes: only the output with its own interval renews, with a fresh key.
      const [ownKey, ownCert, botCert] = [
        content(`${dir}/own/key`),
        content(`${dir}/own/tlscert`),
        content(`${dir}/bot/tlscert`),
      ];
      await clock.advance(5 * 60_000);
      await waitUntil(() => content(`${dir}/own/tlscert`) !== ownCert, "own output renewed");
      assertNotEquals(content(`${dir}/own/key`), ownKey, "with a fresh key");
      assertEquals(
        content(`${dir}/bot/tlscert`),
        botCert,
        "the copy follows the bot's 20m interval",
      );
    } finally {
      stop.abort();
      await clock.advance(0);
      await running;
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
