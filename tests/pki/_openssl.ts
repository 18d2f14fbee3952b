/**
 * Certificates made by the openssl command line, for tests that compare
 * Keybound's readers with another implementation's output.
 *
 * @module
 */
import assert from "node:assert/strict";
import { certificatesFromPem } from "../../src/pki/mod.ts";

/** Runs `openssl ...args` in `dir`; fails the test with its stderr on a non-zero exit. */
export async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** Key kinds: P-256 or Ed25519. */
export type OpensslKeyKind = "ec" | "ed25519";

/** A fresh key `<name>.key` and a request for it `<name>.csr` with subject CN `cn`. */
export function opensslRequest(
  dir: string,
  name: string,
  kind: OpensslKeyKind,
  cn: string,
): Promise<void> {
  const key = kind === "ec"
    ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    : ["-newkey", "ed25519"];
  return openssl(dir, [
    "req",
    "-new",
    ...key,
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ]);
}

/**
 * `<name>.pem` for `<name>.csr`, issued by `ca.pem`/`ca.key` (`ca: null`:
 * self-signed with `<name>.key`), with the extensions `ext` (`-extfile` text;
 * none given: openssl's defaults); returns its DER.
 */
export async function opensslIssue(
  dir: string,
  name: string,
  o: { ca: string | null; days: number; ext?: string },
): Promise<Uint8Array> {
  if (o.ext !== undefined) await Deno.writeTextFile(`${dir}/${name}.ext`, o.ext);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    ...(o.ca === null
      ? ["-signkey", `${name}.key`]
      : ["-CA", `${o.ca}.pem`, "-CAkey", `${o.ca}.key`]),
    "-days",
    String(o.days),
    ...(o.ext === undefined ? [] : ["-extfile", `${name}.ext`]),
    "-out",
    `${name}.pem`,
  ]);
  return certificatesFromPem(await Deno.readTextFile(`${dir}/${name}.pem`))[0];
}
