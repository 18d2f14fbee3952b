import { parseConfig } from "../../src/agent/config/load.ts";
import { parseServerAddress } from "../../src/agent/config/schema.ts";
import { applyStartFlags, emptyConfig, parseStorageUri } from "../../src/cli/tbot/start_flags.ts";
import { ConfigError } from "../../src/errors.ts";
import { UsageError } from "../../src/cli/flags/mod.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";

/** The tbot.yaml of the seed guide, verbatim. */
const SEED = `version: v2
proxy_server: example.teleport.sh:443
onboarding:
  join_method: bound_keypair
  token: example
  bound_keypair:
    registration_secret: SECRET
storage:
  type: directory
  path: /var/lib/teleport/bot
# outputs will be filled in during the completion of an access guide.
outputs: []
`;

function configError(text: string): ConfigError {
  return assertThrows(() => parseConfig(text, "tbot.yaml"), ConfigError);
}

Deno.test("config: the seed guide's file parses with Teleport's defaults", () => {
  const c = parseConfig(SEED);
  assertEquals(c.proxy_server, "example.teleport.sh:443");
  assertEquals(c.onboarding.token, "example");
  assertEquals(c.onboarding.bound_keypair.registration_secret, "SECRET");
  assertEquals(c.storage, { type: "directory", path: "/var/lib/teleport/bot" });
  assertEquals(c.services, []);
  assertEquals(c.credential_ttl, 3600_000);
  assertEquals(c.renewal_interval, 20 * 60_000);
  assertEquals(c.oneshot, false);
  assertEquals(c.insecure, false);
});

Deno.test("config: the seed's oneshot variant and an identity output parse", () => {
  const c = parseConfig(
    SEED.replace("version: v2\n", "version: v2\noneshot: true\n").replace(
      "outputs: []",
      "outputs:\n  - type: identity\n    destination:\n      type: directory\n      path: /opt/out\n",
    ),
  );
  assert(c.oneshot);
  assertEquals(c.services.length, 1);
  assertEquals(c.services[0].type, "identity");
});

Deno.test("config: an unknown key names its path and line", () => {
  const e = configError(SEED.replace("registration_secret:", "registration_secrett:"));
  assertStringIncludes(e.message, "tbot.yaml:7");
  assertStringIncludes(e.message, 'onboarding.bound_keypair: unknown field "registration_secrett"');
  assertEquals(e.details, { path: "onboarding.bound_keypair.registration_secrett", line: 7 });
});

Deno.test("config: an unknown top-level key names its line", () => {
  const e = configError(SEED + "renewal_intervall: 5m\n");
  assertStringIncludes(e.message, "tbot.yaml:13");
  assertStringIncludes(e.message, 'unknown field "renewal_intervall"');
});

Deno.test("config: a wrong type names its path and line", () => {
  const e = configError(SEED.replace("outputs: []", "oneshot: yes please\noutputs: []"));
  assertStringIncludes(e.message, "tbot.yaml:12: oneshot: ");
  assertStringIncludes(e.message, "expected boolean");
  const e2 = configError(SEED.replace("token: example", "token: [a, b]"));
  assertStringIncludes(e2.message, "tbot.yaml:5: onboarding.token");
});

Deno.test("config: errors inside a list name the index and line", () => {
  const e = configError(SEED.replace(
    "outputs: []",
    "outputs:\n  - type: identity\n    destination:\n      type: directory\n      pathh: /x\n",
  ));
  assertStringIncludes(e.message, "tbot.yaml:16: outputs[0].destination: unknown field");
  const e2 = configError(SEED.replace("outputs: []", "outputs:\n  - type: kubernetes\n"));
  assertStringIncludes(e2.message, "tbot.yaml:13: outputs[0].type");
  assertStringIncludes(e2.message, "identity");
});

Deno.test("config: a missing required field is named", () => {
  const e = configError(SEED.replace("  token: example\n", ""));
  assertStringIncludes(e.message, "onboarding.token: ");
  assertStringIncludes(e.message, "required");
});

Deno.test("config: bad durations, versions and join methods are refused clearly", () => {
  assertStringIncludes(
    configError(SEED + "renewal_interval: soon\n").message,
    'tbot.yaml:13: renewal_interval: invalid duration "soon"',
  );
  assertStringIncludes(configError(SEED + "credential_ttl: 0s\n").message, "positive");
  assertStringIncludes(
    configError(SEED.replace("version: v2", "version: v1")).message,
    "tbot.yaml:1: version: unsupported config version",
  );
  assertStringIncludes(
    configError(SEED.replace("join_method: bound_keypair", "join_method: token")).message,
    "tbot.yaml:4: onboarding.join_method: unsupported join method",
  );
});

Deno.test("config: YAML syntax errors and duplicate keys give the line", () => {
  assertStringIncludes(configError("version: v2\nonboarding: [\n").message, "YAML syntax error");
  const dup = configError(SEED.replace("  token: example\n", "  token: example\n  token: other\n"));
  assertStringIncludes(dup.message, "tbot.yaml:6");
  assertStringIncludes(configError("").message, "empty");
});

Deno.test("config: cross-field rules", () => {
  assertStringIncludes(
    configError(SEED + "auth_server: 127.0.0.1:3025\n").message,
    "only one of proxy_server and auth_server",
  );
  assertStringIncludes(
    configError(SEED.replace("proxy_server: example.teleport.sh:443\n", "")).message,
    "one of proxy_server or auth_server is required",
  );
  const both = configError(SEED.replace(
    "registration_secret: SECRET",
    "registration_secret: SECRET\n    registration_secret_path: /etc/secret",
  ));
  assertStringIncludes(both.message, "tbot.yaml:8");
  assertStringIncludes(
    both.message,
    "only one of 'registration_secret' and 'registration_secret_path'",
  );
  const pins = `  ca_pins: ["sha256:${"a".repeat(64)}"]\n  ca_path: /etc/ca.pem\n`;
  assertStringIncludes(
    configError(SEED.replace("  token: example\n", `  token: example\n${pins}`)).message,
    "ca_pins and ca_path are mutually exclusive",
  );
  assertStringIncludes(
    configError(SEED.replace("  token: example\n", '  token: example\n  ca_pins: ["sha1:ab"]\n'))
      .message,
    "onboarding.ca_pins[0]",
  );
});

Deno.test("config: plain http only with insecure and a loopback address", () => {
  const http = SEED.replace("example.teleport.sh:443", "http://127.0.0.1:3025");
  assertStringIncludes(configError(http).message, "plain http:// is allowed only with insecure");
  assertStringIncludes(
    configError(
      SEED.replace("example.teleport.sh:443", "http://10.0.0.1:3025") + "insecure: true\n",
    ).message,
    "loopback",
  );
  const ok = parseConfig(http + "insecure: true\n");
  assertEquals(parseServerAddress(ok.proxy_server!).baseUrl, "http://127.0.0.1:3025");
});

Deno.test("config: server addresses", () => {
  assertEquals(parseServerAddress("example.com:443").baseUrl, "https://example.com");
  assertEquals(parseServerAddress("127.0.0.1:3025").baseUrl, "https://127.0.0.1:3025");
  assertEquals(parseServerAddress("[::1]:3025").hostname, "::1");
  assertThrows(() => parseServerAddress("ftp://x:1"));
  assertThrows(() => parseServerAddress("https://x:1/path"));
});

Deno.test("config: outputs and services merge, and duplicate names are refused", () => {
  const out =
    "  - type: identity\n    name: same\n    destination:\n      type: directory\n      path: /a\n";
  const c = parseConfig(SEED.replace("outputs: []", `outputs:\n${out}services: []\n`));
  assertEquals(c.services.map((s) => s.name), ["same"]);
  const e = configError(SEED.replace("outputs: []", `outputs:\n${out}services:\n${out}`));
  assertStringIncludes(e.message, 'services[0].name: duplicate service name "same"');
});

Deno.test("config flags: flags override the file and are validated", () => {
  const base = parseConfig(SEED);
  const c = applyStartFlags(base, true, {
    oneshot: true,
    diagAddr: "127.0.0.1:3001",
    authServer: "127.0.0.1:3025",
    storage: "file:///tmp/bot",
    renewalInterval: "5m",
  }, silentLogger);
  assert(c.oneshot);
  assertEquals(c.diag_addr, "127.0.0.1:3001");
  assertEquals(c.auth_server, "127.0.0.1:3025");
  assertEquals(c.proxy_server, undefined);
  assertEquals(c.storage, { type: "directory", path: "/tmp/bot" });
  assertEquals(c.renewal_interval, 300_000);
  assertStringIncludes(
    assertThrows(() => applyStartFlags(base, true, { diagAddr: "nope" }, silentLogger), UsageError)
      .message,
    "--diag-addr",
  );
  assertStringIncludes(
    assertThrows(() => applyStartFlags(emptyConfig(), false, {}, silentLogger), UsageError)
      .message,
    "--proxy-server: required",
  );
  assertStringIncludes(
    assertThrows(
      () => applyStartFlags(emptyConfig(), false, { proxyServer: "h:1" }, silentLogger),
      UsageError,
    ).message,
    "--token: required",
  );
  const fromFlags = applyStartFlags(emptyConfig(), false, {
    token: "example",
    proxyServer: "127.0.0.1:3025",
    caPin: ["sha256:" + "b".repeat(64)],
  }, silentLogger);
  assertEquals(fromFlags.onboarding.ca_pins.length, 1);
  assertEquals(parseStorageUri("memory://"), { type: "memory" });
  assertThrows(() => parseStorageUri("kubernetes-secret:///x"), UsageError);
});

Deno.test("config: on_renew hooks parse with a default timeout and are refused clearly", () => {
  const withHook = (hook: string) =>
    SEED.replace(
      "outputs: []",
      `outputs:\n  - type: identity\n    destination:\n      type: directory\n      path: /o\n    on_renew: ${hook}\n`,
    );
  const exec = parseConfig(withHook("{exec: [systemctl, reload, nginx]}")).services[0].on_renew;
  assertEquals(exec, { exec: ["systemctl", "reload", "nginx"], timeout: 10_000 });
  const signal = parseConfig(withHook("{signal: HUP, pid_file: /run/nginx.pid, timeout: 2s}"))
    .services[0].on_renew;
  assertEquals(signal, { signal: "HUP", pid_file: "/run/nginx.pid", timeout: 2000 });
  const cases: [string, string][] = [
    ["{signal: KILL, pid_file: /p}", "outputs[0].on_renew.signal: must be one of HUP"],
    ["{signal: HUP}", "outputs[0].on_renew.pid_file: required"],
    ["{exec: []}", "outputs[0].on_renew.exec: needs at least the program"],
    ["{exec: [x], timeout: 0s}", "outputs[0].on_renew.timeout: must be a positive duration"],
    ["{run: x}", "outputs[0].on_renew: must be {exec: [program, args…]} or {signal: HUP"],
    ["{exec: [curl, -d, SECRET]}", "must not contain the registration secret"],
  ];
  for (const [hook, message] of cases) {
    assertStringIncludes(configError(withHook(hook)).message, message);
  }
});

Deno.test("config: destination readers parse; the storage directory is never shared", () => {
  const withReaders = (path: string, readers: string) =>
    SEED.replace(
      "outputs: []",
      `outputs:\n  - type: identity\n    destination:\n      type: directory\n      path: ${path}\n      readers: ${readers}\n`,
    );
  const c = parseConfig(withReaders("/o", "[{user: nginx}, {group: ssl-cert}]"));
  assertEquals(c.services[0].destination.readers, [{ user: "nginx" }, { group: "ssl-cert" }]);
  assertStringIncludes(
    configError(withReaders("/var/lib/teleport/bot/", "[{user: nginx}]")).message,
    "outputs[0].destination.readers: the bot's storage directory is never shared",
  );
  assertStringIncludes(
    configError(withReaders("/o", "[{uid: 5}]")).message,
    "each reader must be {user: NAME} or {group: NAME}",
  );
  assertStringIncludes(
    configError(withReaders("/o", "[{user: 'a b'}]")).message,
    "user or group name",
  );
  assertStringIncludes(
    configError(SEED.replace("  path: /var/lib/teleport/bot", "  path: /x\n  readers: [{user: a}]"))
      .message,
    "readers",
  );
});

Deno.test("config: join_uri fills address, token and secret; a field it fills is refused beside it", () => {
  const base = "version: v2\nstorage:\n  type: memory\n";
  const uri = "tbot+proxy+bound-keypair://tok:s%40c@h.example:443";
  const c = parseConfig(`${base}join_uri: ${uri}\n`);
  assertEquals(c.proxy_server, "h.example:443");
  assertEquals(c.auth_server, undefined);
  assertEquals(c.onboarding.token, "tok");
  assertEquals(c.onboarding.bound_keypair.registration_secret, "s@c");
  assertEquals(c.join_uri, uri);
  // Without its secret, beside the secret's file and the pins.
  const pin = "sha256:" + "a".repeat(64);
  const d = parseConfig(
    `${base}join_uri: tbot+auth+bound-keypair://tok@h:1\nonboarding:\n  bound_keypair:\n` +
      `    registration_secret_path: /s\n  ca_pins: ["${pin}"]\n`,
  );
  assertEquals(d.auth_server, "h:1");
  assertEquals(d.onboarding.bound_keypair, { registration_secret_path: "/s" });
  assertEquals(d.onboarding.ca_pins, [pin]);
  const cases: [string, string][] = [
    [`join_uri: ${uri}\nproxy_server: h:2\n`, ":5: proxy_server: not together with join_uri"],
    [`join_uri: ${uri}\nauth_server: h:2\n`, ":5: auth_server: not together with join_uri"],
    [
      `join_uri: ${uri}\nonboarding:\n  token: x\n`,
      ":6: onboarding.token: not together with join_uri",
    ],
    [
      `join_uri: ${uri}\nonboarding:\n  bound_keypair:\n    registration_secret_path: /s\n`,
      ":7: onboarding.bound_keypair.registration_secret_path: not together with a join_uri",
    ],
    [`join_uri: ${uri}\nonboarding:\n  join_method: token\n`, ":6: onboarding.join_method:"],
    ["join_uri: tbot+proxy+bound-keypair://tok:s@h\n", ":4: join_uri: the address needs a port"],
    ["join_uri: 3\n", ":4: join_uri: must be tbot+proxy+bound-keypair://"],
  ];
  for (const [text, expected] of cases) {
    const e = configError(base + text);
    assertStringIncludes(e.message, expected);
    assert(!e.message.includes("s%40c"), "the URI is never echoed");
  }
  // --join-uri over a file's join_uri; --ca-pin alone keeps the file's join_uri token.
  const flagged = applyStartFlags(c, true, { caPin: [pin] }, silentLogger);
  assertEquals(flagged.onboarding.token, "tok");
  assertEquals(flagged.join_uri, uri);
  const moved = applyStartFlags(c, true, { proxyServer: "other:1" }, silentLogger);
  assertEquals(moved.join_uri, undefined, "no longer describes the config");
});
