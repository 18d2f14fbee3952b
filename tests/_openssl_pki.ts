/**
 * A test PKI made by the real `openssl` CLI: a P-256 CA (`ca.crt`, `ca.key`, made once per
 * directory) and a server certificate it signed for a subjectAltName (`server.crt`,
 * `server.key` 0600). Used wherever a test needs a certificate from someone else's PKI.
 *
 * @module
 */

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A CA (`ca.crt`) and a server certificate it signed for `san` (`server.crt`, `server.key`). */
export async function issueServerCert(tlsDir: string, san: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  try {
    Deno.statSync(`${tlsDir}/ca.crt`);
  } catch {
    await openssl([
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-subj",
      "/CN=keybound test CA",
      "-days",
      "2",
    ], tlsDir);
  }
  await Deno.writeTextFile(`${tlsDir}/san.cnf`, `subjectAltName=${san}\n`);
  await openssl([
    "req",
    ...ec,
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=keybound test server",
  ], tlsDir);
  await openssl([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "2",
    "-extfile",
    "san.cnf",
  ], tlsDir);
  await Deno.chmod(`${tlsDir}/server.key`, 0o600);
}
