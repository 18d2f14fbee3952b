/**
 * Whether this process runs on the `deno` command-line program, which can
 * start other Deno programs (`deno run …`), or is a compiled binary
 * (`deno compile`), which runs only its own program. Imports nothing.
 *
 * @module
 */

/**
 * The `deno` executable running this process; undefined in a compiled binary.
 * Asked of Deno (`Deno.build.standalone`), not read from the executable's
 * name: a CLI installed as `deno-2.9.6` is still the CLI, and a compiled
 * binary named `deno` still refuses `run`.
 */
export function denoCliPath(): string | undefined {
  return Deno.build.standalone ? undefined : Deno.execPath();
}
