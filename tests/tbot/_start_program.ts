/**
 * Test child: starts one program the way tbot does (`hook PROGRAM`: a reload
 * hook's `exec`; `share FILE`: setfacl for an output's readers) and prints
 * `RESULT ran` or `RESULT refused <message>`. Run it under a pseudo-terminal
 * with a narrowed --allow-run to see whether Deno would prompt.
 */
import { denoHookProcesses } from "../../runtime-adapters/deno/hook_processes.ts";
import { denoFileSharing } from "../../runtime-adapters/deno/file_sharing.ts";
import { HOOK_PATH } from "../../src/agent/hooks/mod.ts";

const [kind, target] = Deno.args;
try {
  if (kind === "hook") await denoHookProcesses.run([target], { PATH: HOOK_PATH }, 10_000);
  else await denoFileSharing.setAcl(target, "u::rw-,g::---,o::---");
  console.log("RESULT ran");
} catch (err) {
  console.log(`RESULT refused ${(err as Error).message}`);
}
