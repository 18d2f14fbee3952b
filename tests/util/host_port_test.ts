import { BadParameterError } from "../../src/errors.ts";
import {
  canonicalIp,
  isHostPort,
  isLoopbackHost,
  parseHostPort,
  parseServerAddress,
} from "../../src/util/host_port.ts";
import { assertEquals, assertThrows } from "../_assert.ts";

Deno.test("isLoopbackHost: localhost, 127/8 and ::1 in any spelling; nothing else", () => {
  for (const h of ["localhost", "LocalHost", "127.0.0.1", "127.9.9.9", "127.1", "::1", "[::1]"]) {
    assertEquals(isLoopbackHost(h), true, h);
  }
  assertEquals(isLoopbackHost("0:0:0:0:0:0:0:1"), true);
  assertEquals(isLoopbackHost("::ffff:127.0.0.1"), true);
  for (const h of ["10.0.0.1", "127.0.0.1.nip.io", "::2", "example.com", "127.0.0.1/x", ""]) {
    assertEquals(isLoopbackHost(h), false, h);
  }
});

Deno.test("canonicalIp: one spelling per address; IPv4-mapped IPv6 is the IPv4 address", () => {
  for (const mapped of ["::ffff:192.0.2.7", "[::FFFF:192.0.2.7]", "0:0:0:0:0:ffff:c000:207"]) {
    assertEquals(canonicalIp(mapped), "192.0.2.7", mapped);
  }
  assertEquals(canonicalIp("2001:DB8:0:0::1"), "2001:db8::1");
  assertEquals(canonicalIp("[::1]"), "::1");
  assertEquals(canonicalIp("127.1"), "127.0.0.1");
  // Not mapped: the NAT64 prefix and the SIIT ::ffff:0:a.b.c.d stay IPv6.
  assertEquals(canonicalIp("64:ff9b::192.0.2.7"), "64:ff9b::c000:207");
  assertEquals(canonicalIp("::ffff:0:192.0.2.7"), "::ffff:0:c000:207");
  for (const asIs of ["203.0.113.9", "example.com", "fe80::1%eth0", "1.2.3.4/x", "not:an:ip"]) {
    assertEquals(canonicalIp(asIs), asIs);
  }
});

Deno.test("parseServerAddress: scheme and port defaults; the written port is kept", () => {
  assertEquals(parseServerAddress("auth.example.com:3025"), {
    scheme: "https:",
    hostname: "auth.example.com",
    port: 3025,
    baseUrl: "https://auth.example.com:3025",
  });
  assertEquals(parseServerAddress("auth.example.com").port, 443);
  assertEquals(parseServerAddress("auth.example.com", "x", 3025).port, 3025);
  assertEquals(parseServerAddress("https://a:443", "x", 3025).port, 443);
  assertEquals(parseServerAddress("http://[::1]:8080/").baseUrl, "http://[::1]:8080");
  for (const bad of ["ftp://a:1", "https://a:1/path", "https://u@a:1", "a:b:c"]) {
    assertThrows(() => parseServerAddress(bad, "--proxy-server"), BadParameterError);
  }
  const e = assertThrows(() => parseServerAddress("ftp://a:1", "--proxy-server"));
  assertEquals(e.message, '--proxy-server: unsupported scheme "ftp" (use https://)');
});

Deno.test("parseHostPort / isHostPort: HOST:PORT with IPv6 in brackets", () => {
  assertEquals(parseHostPort("[::1]:0", "--listen"), { host: "::1", port: 0 });
  assertEquals(parseHostPort("h", "--listen", 3025), { host: "h", port: 3025 });
  assertEquals(isHostPort("127.0.0.1:3000"), true);
  for (const bad of ["nope", "a/b:1", "h:70000", ":1"]) assertEquals(isHostPort(bad), false, bad);
});
