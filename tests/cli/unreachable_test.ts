/**
 * `tbot keypair create` takes `tbot start`'s trust flags, and both name the
 * real cause when the auth service cannot be reached: an untrusted or
 * misnamed certificate, a refused connection, a name that does not resolve.
 * Real tbot, a real auth service over HTTPS, a real TLS server with a
 * certificate from `openssl` for another name.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { issueServerCert } from "../_openssl_pki.ts";
import { newCluster } from "../agent/_cluster.ts";
import { freePort, runTbot } from "../tbot/_harness.ts";
import { ignoreWithout } from "../_tools.ts";

const WARNING = "could not ping";

/** The `error=` of keypair create's warning, or "" when it pinged the server. */
function pingError(stderr: string): string {
  const line = stderr.split("\n").find((l) => l.includes(WARNING));
  return JSON.parse(line?.match(/error=(".*")/)?.[1] ?? '""');
}

Deno.test(
  "unreachable: keypair create trusts by --ca-pin and names why a server cannot be reached",
  {
    ignore: ignoreWithout("unreachable-server test (an openssl-made certificate)", "openssl"),
  },
  async () => {
    const cluster = await newCluster();
    const served = await cluster.serve();
    const dir = await Deno.makeTempDir({ prefix: "cli-unreachable-" });
    const tlsDir = `${dir}/tls`;
    await Deno.mkdir(tlsDir);
    await issueServerCert(tlsDir, "DNS:other.example");
    const other = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(`${tlsDir}/server.crt`),
      key: await Deno.readTextFile(`${tlsDir}/server.key`),
      onListen: () => {},
    }, () => new Response("{}"));
    try {
      const create = (name: string, server: string, ...extra: string[]) =>
        runTbot([
          "keypair",
          "create",
          "--storage",
          `${dir}/${name}`,
          "--proxy-server",
          server,
          ...extra,
        ]);

      // The right pin: the server is verified, pinged, and its host CA kept in storage.
      const pinned = await create("pinned", served.address, "--ca-pin", cluster.pin);
      assertEquals(pinned.code, 0, pinned.stderr);
      assert(!pinned.stderr.includes(WARNING), pinned.stderr);
      assert((await Deno.stat(`${dir}/pinned/host_ca.pem`)).isFile);

      // --ca-pin and --insecure, or a malformed pin, are usage errors.
      const both = await create("both", served.address, "--ca-pin", cluster.pin, "--insecure");
      assertEquals([both.code, both.stderr.split("\n")[0]], [
        2,
        "tbot: error [BAD_PARAMETER]: --insecure: not together with --ca-pin (a pin is verification)",
      ]);
      const malformed = await create("malformed", served.address, "--ca-pin", "sha256:xyz");
      assertEquals(malformed.code, 2, malformed.stderr);
      assertStringIncludes(
        malformed.stderr,
        'tbot: error [BAD_PARAMETER]: --ca-pin: "sha256:xyz" must be sha256:',
      );

      const refusedPort = freePort();
      const cases: [string, string, string[], string][] = [
        [
          "untrusted",
          served.address,
          [],
          "TLS: the server's certificate is not trusted (issued by a CA this host does not trust) " +
          "(pass --ca-pin with the pin `tctl status` prints, or --insecure)",
        ],
        [
          "misnamed",
          `127.0.0.1:${other.addr.port}`,
          [],
          `TLS: the server's certificate is not valid for the name "127.0.0.1" (it is for ` +
          "other.example): connect by a name the certificate lists",
        ],
        [
          "refused",
          `127.0.0.1:${refusedPort}`,
          [],
          `connection refused: nothing is listening at 127.0.0.1:${refusedPort}`,
        ],
        [
          "refused-pinned",
          `127.0.0.1:${refusedPort}`,
          ["--ca-pin", cluster.pin],
          `connection refused: nothing is listening at 127.0.0.1:${refusedPort}`,
        ],
        [
          "dns",
          "no-such-host.invalid:443",
          [],
          "DNS: the name no-such-host.invalid does not resolve",
        ],
      ];
      for (const [name, server, extra, cause] of cases) {
        // The misnamed server's CA is trusted, so only the name is wrong.
        const env = name === "misnamed" ? { DENO_CERT: `${tlsDir}/ca.crt` } : undefined;
        const r = await runTbot(
          ["keypair", "create", "--storage", `${dir}/${name}`, "--proxy-server", server, ...extra],
          env,
        );
        assertEquals(r.code, 0, r.stderr);
        assertStringIncludes(pingError(r.stderr), cause);
        assert(!r.stderr.includes("fetch failed"), r.stderr);
        // tbot start says the same.
        if (name === "refused-pinned") continue;
        const start = await runTbot([
          "start",
          "--oneshot",
          "--token",
          "t",
          "--registration-secret",
          "s",
          "--storage",
          "memory://",
          "--proxy-server",
          server,
        ], env);
        assertEquals(start.code, 1, start.stderr);
        const error = start.stderr.split("\n").filter((l) => l.includes(" ERROR "));
        assertEquals(error.length, 1, start.stderr);
        assertStringIncludes(error[0], cause.replace(/ \(pass --ca-pin.*$/, ""));
      }
    } finally {
      await other.shutdown();
      await served.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
