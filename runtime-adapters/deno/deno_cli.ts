/**
 * Whether this process runs on the `deno` command-line program, which can
 * start other Deno programs (`deno run …`), or is a compiled binary
 * (`deno compile`), which runs only its own program. Imports nothing.
 *
 * @module
 */

/** The `deno` executable running this process; undefined in a compiled binary. */
export function denoCliPath(): string | undefined {
  const exec = Deno.execPath();
  return /(^|[\\/])deno(\.exe)?$/.test(exec) ? exec : undefined;
}
