/**
 * `deno task tctl`: the Keybound admin CLI on Deno. Parses the command line,
 * resolves the connection (flags, `--data-dir`, environment), and runs the
 * runtime-agnostic commands of src/cli/tctl. Exit code 0 on success; on
 * failure one `tctl: error [CODE]: …` line on stderr and exit code 1 (2 for usage errors).
 *
 * @module
 */
import { editInEditor } from "./editor.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { KeyboundError } from "../../src/errors.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import {
  describeError,
  resolveConnection,
  runTctl,
  type TctlFlags,
  UsageError,
} from "../../src/cli/tctl/mod.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { createTctlFetch } from "./tctl_transport.ts";
import { argParser } from "./arg_parser.ts";
import { osErrorReason } from "./os_error.ts";
import { envReader, guardNodeEnv, missingPermission } from "./permissions.ts";
import process from "node:process";

// Under a narrowed --allow-env, a variable read by an npm package (`yaml` reads
// LOG_TOKENS) would prompt a terminal; tctl's own are read through envReader.
guardNodeEnv(process);

/**
 * A file's text; the command names the file, the error says only why. Asked
 * first: outside a narrowed --allow-read, Deno would prompt a terminal.
 */
async function readFileText(path: string): Promise<string> {
  const missing = missingPermission({ name: "read", path }, "tctl");
  if (missing !== undefined) throw new Error(missing);
  return await Deno.readTextFile(path).catch((err) => {
    throw new Error(osErrorReason(err), { cause: err });
  });
}

/** `create`'s FILE: a file, or `-` for standard input. */
async function readText(path: string): Promise<string> {
  if (path === "-") return await new Response(Deno.stdin.readable).text();
  return await readFileText(path);
}

function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

async function openApi(flags: TctlFlags): Promise<AdminApiClient> {
  const settings = await resolveConnection(flags, {
    // Outside a narrowed --allow-env: refused by name, never a prompt (./permissions.ts).
    ...envReader("tctl"),
    readTextFile: readFileText,
  });
  let text: string;
  try {
    text = await readFileText(settings.identityPath);
  } catch (err) {
    throw new KeyboundError(
      "BAD_PARAMETER",
      `cannot read identity file ${settings.identityPath}: ${(err as Error).message}`,
      { cause: (err as Error).cause ?? err },
    );
  }
  const identity = await parseIdentityFile(text);
  return new AdminApiClient({
    baseUrl: settings.baseUrl,
    signer: identity,
    fetch: await createTctlFetch({
      baseUrl: settings.baseUrl,
      hostCaPems: identity.hostCaPems,
      caPems: settings.caPems,
      insecure: settings.insecure,
    }),
  });
}

/** Runs tctl; returns the exit code. Started by ./entry/tctl.ts. */
export async function main(args: string[]): Promise<number> {
  try {
    return await runTctl(args, argParser, (flags) => {
      let api: Promise<AdminApiClient> | undefined;
      return {
        api: () => (api ??= openApi(flags)),
        out: writeStdout,
        readTextFile: readText,
        editText: editInEditor,
        now: () => new Date(),
        version: denoJson.version,
      };
    }, writeStdout);
  } catch (err) {
    console.error(describeError(err));
    return err instanceof UsageError ? 2 : 1;
  }
}
