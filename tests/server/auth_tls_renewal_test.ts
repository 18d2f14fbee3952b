/**
 * A long-running auth service replaces the TLS certificate it issued itself
 * before that certificate expires (at two thirds of `--tls-cert-ttl`), in
 * place, and clients trusting the host CA keep connecting. Real process,
 * real TLS; a 9 s lifetime stands for the default year.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { fetchUnverified } from "../../runtime-adapters/deno/trust.ts";
import { parseCertificate, type ParsedCertificate } from "../../src/pki/mod.ts";
import { parseAuthCommandLine } from "../../src/cli/auth/command_line.ts";
import { argParser } from "../../runtime-adapters/deno/arg_parser.ts";
import { UsageError } from "../../src/cli/flags/mod.ts";
import { waitUntil } from "../_wait.ts";

const TTL_MS = 9_000;
/** How far notBefore lies before the moment of issue (src/server/identity.ts). */
const BACKDATE_MS = 60_000;

async function served(url: string): Promise<ParsedCertificate> {
  return parseCertificate((await fetchUnverified(url)).leafDer);
}

Deno.test("auth start: the service's own TLS certificate is renewed at 2/3 of its lifetime", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-tls-renewal-" });
  const auth = await spawnAuthService({
    dataDir: `${dir}/data`,
    args: ["--tls-cert-ttl", "9s"],
    captureLog: true,
  });
  try {
    const first = await served(auth.url);
    assertEquals(first.notAfter.getTime() - first.notBefore.getTime(), TTL_MS + BACKDATE_MS);
    let next = first;
    await waitUntil(
      async () => {
        // A handshake that falls on the swap may be reset; the next poll connects again.
        next = await served(auth.url).catch(() => next);
        return next.serialHex !== first.serialHex;
      },
      "a renewed certificate",
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const issuedAt = (c: ParsedCertificate) => c.notBefore.getTime() + BACKDATE_MS;
    assert(
      issuedAt(next) < first.notAfter.getTime(),
      `renewed at ${next.notBefore.toISOString()} + backdate, after the first expired`,
    );
    assert(
      issuedAt(next) >= issuedAt(first) + TTL_MS * 2 / 3 - 1_000,
      `renewed too early: ${issuedAt(next) - issuedAt(first)} ms after the first`,
    );
    assertEquals(next.notAfter.getTime() - next.notBefore.getTime(), TTL_MS + BACKDATE_MS);
    assert(
      auth.log().includes("renewed the service's TLS certificate before it expires"),
      auth.log(),
    );
    // Still the one CA clients pin: same issuer.
    assertEquals(next.issuer, first.issuer);
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth start: --tls-cert-ttl is checked", () => {
  const parse = (...flags: string[]) =>
    parseAuthCommandLine(["start", "--data-dir", "/tmp/x", ...flags], argParser, () => "h");
  const start = (...flags: string[]) => {
    const line = parse(...flags);
    assert(line.kind === "start");
    return line.config;
  };
  assertEquals(start().tlsCertTtlMs, undefined);
  assertEquals(start("--tls-cert-ttl", "720h").tlsCertTtlMs, 720 * 3_600_000);
  for (
    const [flags, message] of [
      [["--tls-cert-ttl", "1s"], /--tls-cert-ttl: at least 6s, got "1s"/],
      [["--tls-cert-ttl", "soon"], /--tls-cert-ttl: invalid duration "soon"/],
      [["--tls-cert-ttl", "1h", "--insecure-no-tls"], /has none with --insecure-no-tls/],
    ] as const
  ) {
    const err = assertThrows(() => parse(...flags), UsageError);
    assert(message.test(err.message), err.message);
  }
});
