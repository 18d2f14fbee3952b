/**
 * Test child: `lookup PROGRAM PATH` prints, as JSON, the place tbot would
 * start for PROGRAM on PATH and whether it may (runtime-adapters/deno/
 * permissions.ts `programToRun`); `deno PROGRAM PATH` starts PROGRAM the way
 * Deno finds it on PATH and prints what it wrote. Bundled and run as another
 * user by program_lookup_test.ts.
 */
import { programToRun } from "../../runtime-adapters/deno/permissions.ts";

const [how, program, path] = Deno.args;
if (how === "lookup") {
  try {
    console.log(JSON.stringify(programToRun(program, path)));
  } catch (err) {
    console.log(JSON.stringify({ error: (err as Error).name }));
  }
} else {
  const out = new Deno.Command(program, { env: { PATH: path }, clearEnv: true }).outputSync();
  console.log(JSON.stringify({ ran: new TextDecoder().decode(out.stdout).trim() }));
}
