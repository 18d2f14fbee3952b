/**
 * `auth start` flags for running behind operator infrastructure:
 * `--tls-cert-file`/`--tls-key-file` (a certificate from the operator's own
 * PKI, trusted by clients through their CA file) and `--log-format json`.
 *
 * @module
 */
import { authStartCommand } from "../../runtime-adapters/deno/auth_process.ts";
import { fetchUnverified } from "../../runtime-adapters/deno/trust.ts";
import { certificatesFromPem } from "../../src/pki/mod.ts";
import { assert, assertEquals } from "../_assert.ts";
import { processDir } from "./_watchdog.ts";
import { issueServerCert } from "../_openssl_pki.ts";

function authCommand(dataDir: string, args: string[]): Deno.Command {
  const [program, ...argv] = authStartCommand({ dataDir, args });
  return new Deno.Command(program, {
    args: argv,
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("auth start: --tls-cert-file/--tls-key-file serve the operator's certificate; --log-format json", async (t) => {
  const place = await processDir();
  const dir = place.dir;
  try {
    await issueServerCert(dir, "IP:127.0.0.1,DNS:localhost");

    await t.step("the operator's certificate is served and verifies against its CA", async () => {
      const child = authCommand(`${dir}/data`, [
        "--cluster-name",
        "op.example",
        "--tls-cert-file",
        `${dir}/server.crt`,
        "--tls-key-file",
        `${dir}/server.key`,
        "--log-format",
        "json",
      ]).spawn();
      place.track(child.pid);
      const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let banner = "";
      while (!/CA pin sha256:/.test(banner)) {
        const { value, done } = await out.read();
        if (done) throw new Error(`exited early: ${banner}`);
        banner += value;
      }
      const url = /service listening on (\S+)/.exec(banner)![1];
      try {
        const client = Deno.createHttpClient({
          caCerts: [await Deno.readTextFile(`${dir}/ca.crt`)],
        });
        try {
          const res = await fetch(`${url}/v1/ping`, { client });
          assertEquals(res.status, 200);
          await res.body?.cancel();
        } finally {
          client.close();
        }
        const { leafDer } = await fetchUnverified(url);
        const [fileDer] = certificatesFromPem(await Deno.readTextFile(`${dir}/server.crt`));
        assertEquals([...leafDer], [...fileDer]);
      } finally {
        child.kill("SIGTERM");
        while (!(await out.read()).done) { /* drain */ }
        const { code } = await child.status;
        assertEquals(code, 0);
      }
      const log = await new Response(child.stderr).text();
      const lines = log.trim().split("\n");
      assert(lines.length >= 2, log);
      for (const line of lines) {
        const obj = JSON.parse(line);
        assert(typeof obj.time === "string" && typeof obj.msg === "string", line);
        assertEquals(obj.component, "auth");
      }
    });

    const refusals: [string, string[], RegExp][] = [
      ["cert without key", ["--tls-cert-file", `${dir}/server.crt`], /must be given together/],
      ["unreadable cert", [
        "--tls-cert-file",
        `${dir}/nope.crt`,
        "--tls-key-file",
        `${dir}/server.key`,
      ], /--tls-cert-file \S+nope\.crt: /],
      ["key file holding a certificate", [
        "--tls-cert-file",
        `${dir}/server.crt`,
        "--tls-key-file",
        `${dir}/server.crt`,
      ], /--tls-key-file \S+: no PEM key/],
      ["with --insecure-no-tls", [
        "--tls-cert-file",
        `${dir}/server.crt`,
        "--tls-key-file",
        `${dir}/server.key`,
        "--insecure-no-tls",
      ], /contradict/],
      ["unknown log format", ["--log-format", "xml"], /--log-format must be text or json/],
    ];
    for (const [name, args, re] of refusals) {
      await t.step(`refused: ${name}`, async () => {
        const r = await authCommand(`${dir}/refused`, args).output();
        const err = new TextDecoder().decode(r.stderr).trim();
        assertEquals(r.code, 2, err);
        assertEquals(err.split("\n").length, 1, err);
        assert(re.test(err), err);
      });
    }
  } finally {
    await place[Symbol.asyncDispose]();
  }
});
