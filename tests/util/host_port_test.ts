import { BadParameterError } from "../../src/errors.ts";
import {
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
  for (const h of ["10.0.0.1", "127.0.0.1.nip.io", "::2", "example.com", "127.0.0.1/x", ""]) {
    assertEquals(isLoopbackHost(h), false, h);
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
