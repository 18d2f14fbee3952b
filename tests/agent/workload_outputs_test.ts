import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { parseConfig } from "../../src/agent/config/load.ts";
import { sshConfigText } from "../../src/agent/outputs/ssh_config.ts";
import { ConfigError, KeyboundError } from "../../src/errors.ts";
import { getResource } from "../../src/server/resources/mod.ts";
import type { Token } from "../../src/resources/schemas.ts";
import { ReadinessRegistry } from "../../src/agent/readiness.ts";
import {
  addBot,
  addWorkloadIdentity,
  runTbot,
  runTbotOnce,
  startCluster,
} from "../interop/_interop_fixture.ts";
import { FakeClock } from "./_fake_clock.ts";
import { waitUntil } from "../_wait.ts";

const HEAD = [
  "version: v2",
  "auth_server: auth.example.com:3025",
  "onboarding: {join_method: bound_keypair, token: t}",
  "storage: {type: memory}",
].join("\n");

function refusal(yaml: string): ConfigError {
  return assertThrows(() => parseConfig(`${HEAD}\n${yaml}`, "tbot.yaml"), ConfigError);
}

Deno.test("config: the workload output types parse with their fields and lifetime overrides", () => {
  const c = parseConfig(`${HEAD}
services:
  - type: ssh_host
    destination: {type: directory, path: /opt/host}
    principals: [host.example.com]
  - type: workload-identity-x509
    destination: {type: directory, path: /opt/x509}
    selector: {name: svc}
    credential_ttl: 30m
    renewal_interval: 10m
  - type: workload-identity-jwt
    destination: {type: directory, path: /opt/jwt}
    selector: {name: svc}
    audiences: [a]
`);
  assertEquals(c.services.map((s) => s.type), [
    "ssh_host",
    "workload-identity-x509",
    "workload-identity-jwt",
  ]);
  const x509 = c.services[1] as { credential_ttl?: number; renewal_interval?: number };
  assertEquals([x509.credential_ttl, x509.renewal_interval], [1800_000, 600_000]);
});

Deno.test("config: bad workload outputs are refused at load with the field path", () => {
  const cases: [string, string, string][] = [
    [
      "services:\n  - type: spiffe-svid\n    destination: {type: directory, path: /x}",
      "services[0].type",
      "unsupported service type",
    ],
    [
      "services:\n  - type: ssh_host\n    destination: {type: directory, path: /x}",
      "services[0].principals",
      "required",
    ],
    [
      "outputs:\n  - type: ssh_host\n    destination: {type: directory, path: /x}\n    principals: []",
      "outputs[0].principals",
      "at least one principal",
    ],
    [
      "services:\n  - type: ssh_host\n    destination: {type: directory, path: /x}\n    principals: [ok.example.com, 'bad host']",
      "services[0].principals[1]",
      "host name",
    ],
    [
      "services:\n  - type: workload-identity-jwt\n    destination: {type: directory, path: /x}\n    selector: {name: s}\n    audiences: []",
      "services[0].audiences",
      "at least one audience",
    ],
    [
      "services:\n  - type: workload-identity-x509\n    destination: {type: directory, path: /x}",
      "services[0].selector",
      "selector",
    ],
    [
      "services:\n  - type: workload-identity-x509\n    destination: {type: directory, path: /x}\n    selector: {labels: {a: [b]}}",
      "services[0].selector.labels",
      "unknown field",
    ],
    [
      "services:\n  - type: workload-identity-x509\n    destination: {type: directory, path: /x}\n    selector: {name: s}\n    credential_ttl: 1h",
      "services[0].renewal_interval",
      "must be set together",
    ],
  ];
  for (const [yaml, path, fragment] of cases) {
    const e = refusal(yaml);
    assertEquals(e.details?.path, path, e.message);
    assertStringIncludes(e.message, fragment);
    assertStringIncludes(e.message, "tbot.yaml:");
  }
});

Deno.test({
  name:
    "an output destination that cannot be written is refused with its field path before any join",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "keybound-unwritable-" });
    const cluster = await startCluster("unwritable.example.com");
    try {
      const secret = await addBot(cluster.ctx, "host", { hostCerts: true });
      // A directory below a regular file cannot exist, even for root.
      await Deno.writeTextFile(`${dir}/file`, "");
      const e = await assertRejects(
        () =>
          runTbotOnce(
            cluster,
            "host",
            secret,
            [
              "  - type: ssh_host",
              `    destination: {type: directory, path: ${dir}/file/host}`,
              "    principals: [localhost]",
            ].join("\n"),
          ),
        KeyboundError,
      );
      assertStringIncludes(e.message, "services[0].destination.path");
      const token = (await getResource(cluster.ctx, "token", "host-token"))!.resource as Token;
      assertEquals(token.status?.bound_keypair?.bound_public_key, undefined, "no join happened");
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("ssh_config: absolute, quoted paths with % escaped; unusable paths are refused", () => {
  const text = sshConfigText("/var/lib/bot%1/out/");
  assertStringIncludes(text, 'IdentityFile "/var/lib/bot%%1/out/key"');
  assertStringIncludes(text, 'CertificateFile "/var/lib/bot%%1/out/key-cert.pub"');
  assertStringIncludes(text, 'UserKnownHostsFile "/var/lib/bot%%1/out/known_hosts"');
  assertStringIncludes(text, "StrictHostKeyChecking yes");
  assert(!text.includes("ssh-rsa"), "only certificate host key algorithms");
  assertThrows(() => sshConfigText("relative/dir"), KeyboundError);
  assertThrows(() => sshConfigText('/tmp/a"b'), KeyboundError);
});

Deno.test({
  name:
    "daemon: an output's own renewal_interval renews it on its own schedule, with its own readiness",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "keybound-intervals-" });
    const cluster = await startCluster("intervals.example.com");
    const clock = new FakeClock(new Date());
    const readiness = new ReadinessRegistry(() => clock.now());
    const stop = new AbortController();
    let running: Promise<void> | undefined;
    try {
      const secret = await addBot(cluster.ctx, "wl", { workloadLabels: { env: ["dev"] } });
      await addWorkloadIdentity(cluster.ctx, "svc");
      const jwtFile = `${dir}/jwt/jwt_svid`;
      const svidFile = `${dir}/x509/svid.pem`;
      running = runTbot(
        cluster,
        "wl",
        secret,
        [
          "  - type: workload-identity-jwt",
          "    name: fast-jwt",
          `    destination: {type: directory, path: ${dir}/jwt}`,
          "    selector: {name: svc}",
          "    audiences: [a]",
          "    credential_ttl: 10m",
          "    renewal_interval: 5m",
          "  - type: workload-identity-x509",
          "    name: svid",
          `    destination: {type: directory, path: ${dir}/x509}`,
          "    selector: {name: svc}",
        ].join("\n"),
        { oneshot: false, clock, readiness, signal: stop.signal },
      );
      const content = (f: string) => {
        try {
          return Deno.readTextFileSync(f);
        } catch {
          return "";
        }
      };
      await waitUntil(() => content(jwtFile) !== "" && content(svidFile) !== "", "first write");
      await waitUntil(() => readiness.service("svid")?.status === "healthy", "svid healthy");
      assertEquals(readiness.service("fast-jwt")?.status, "healthy");
      const [jwt1, svid1] = [content(jwtFile), content(svidFile)];

      // 5 minutes: only the output with its own 5m interval renews.
      await clock.advance(5 * 60_000);
      await waitUntil(() => content(jwtFile) !== jwt1, "the JWT-SVID renewed on its own interval");
      assertEquals(content(svidFile), svid1, "the X.509 SVID follows the bot's 20m interval");

      // 20 minutes: the bot identity renews and the following output with it.
      await clock.advance(15 * 60_000);
      await waitUntil(() => content(svidFile) !== svid1, "the X.509 SVID renewed with the bot");
      assert(readiness.overall().services["fast-jwt"] !== undefined);
    } finally {
      stop.abort();
      await clock.advance(0);
      await running;
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
