/**
 * Run as its own process by trust_exclusive_test.ts: fetches `Deno.args[1]`
 * through runtime-adapters/deno/exclusive_trust.ts trusting only the PEM
 * file `Deno.args[0]`, and prints one JSON line: which transport was taken
 * and whether the server was accepted. With `--tls-first`, the process makes
 * a TLS client first (Deno builds its default root store then), as a
 * process embedding tbot would have.
 *
 * @module
 */
import {
  claimEmptyDefaultRoots,
  fetchTrustingOnly,
} from "../../runtime-adapters/deno/exclusive_trust.ts";

const [caFile, url, flag] = Deno.args;
if (flag === "--tls-first") Deno.createHttpClient({}).close();
const trustingOnly = await fetchTrustingOnly();
let accepted: boolean;
let error = "";
try {
  await (await trustingOnly([await Deno.readTextFile(caFile)])(url)).text();
  accepted = true;
} catch (e) {
  accepted = false;
  error = String((e as Error).cause ?? e).split("\n")[0];
}
console.log(JSON.stringify({ emptyRoots: await claimEmptyDefaultRoots(), accepted, error }));
