/**
 * The `tbot` command line: dispatch to the commands (the flag table is
 * {@linkcode TBOT}), and error reporting. The argument parser is injected
 * (Node's `util.parseArgs` on Deno) so this module stays runtime-agnostic.
 *
 * @module
 */
import { TBOT_VERSION } from "../../agent/version.ts";
import { errorMessage } from "../../errors.ts";
import { createLogger } from "../../util/log.ts";
import { type ArgParser, commandHelp, parseCommandLine, programHelp } from "../flags/mod.ts";
import { OUTPUT_MODES, type OutputMode, TBOT } from "./flags.ts";
import { reportFailure, usageLine } from "./failure.ts";
import { logFormatOf } from "./log_format.ts";
import type { TbotPlatform } from "./platform.ts";
import type { StartSeams } from "./start.ts";

/**
 * Starts a throwaway ECDSA P-256 key generation. The runtime's first P-256
 * operation pays a one-time setup of ~40 ms; started here, it runs off the
 * main thread while the agent's modules load, instead of delaying the join's
 * certificate key.
 */
function warmUpEcdsa(): void {
  crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
    .catch(() => {});
}

/**
 * Runs `tbot` with `argv` (without the program name). Returns the exit code:
 * 0 success, 1 failure, 2 bad usage.
 */
export async function runTbot(
  argv: string[],
  platform: TbotPlatform,
  parser: ArgParser,
  seams: StartSeams = {},
): Promise<number> {
  let line;
  try {
    line = parseCommandLine(TBOT, argv, parser);
  } catch (e) {
    platform.stderr(usageLine(errorMessage(e)));
    return 2;
  }
  if (line.kind === "help") {
    platform.stdout(line.command ? commandHelp(TBOT, line.command) : programHelp(TBOT));
    return line.missingCommand ? 2 : 0;
  }
  const flags = line.flags;
  const [verb, modeWord] = line.command.path;
  const mode = modeWord !== undefined && modeWord in OUTPUT_MODES
    ? modeWord as OutputMode
    : undefined;
  const command = verb === "start" || verb === "configure" ? verb : line.command.path.join(" ");
  const debug = !!flags.debug || /^(1|true|yes)$/i.test(platform.env("TBOT_DEBUG") ?? "");
  // Each command's module is loaded only when it runs, so a oneshot start
  // (and `tbot version`) does not pay for the others' imports.
  if (command === "start") {
    warmUpEcdsa();
    const { runStart } = await import("./start.ts");
    return runStart({ ...flags, debug, mode }, platform, seams);
  }
  let format;
  try {
    format = logFormatOf(flags.logFormat);
  } catch (e) {
    platform.stderr(usageLine(errorMessage(e)));
    return 2;
  }
  const log = createLogger({ format, debug, component: "tbot", write: platform.stderr });
  try {
    switch (command) {
      case "configure": {
        const { runConfigure } = await import("./configure.ts");
        return await runConfigure({ ...flags, mode: mode! }, platform, log);
      }
      case "keypair create": {
        const { runKeypairCreate } = await import("./keypair_create.ts");
        return await runKeypairCreate(flags, platform, log);
      }
      case "install systemd": {
        const { runInstallSystemd } = await import("./install_systemd.ts");
        return await runInstallSystemd(flags, platform, log);
      }
      case "wait": {
        const [{ runWait }, { systemClock }] = await Promise.all([
          import("./wait.ts"),
          import("../../agent/clock.ts"),
        ]);
        await runWait(flags, seams.clock ?? systemClock);
        return 0;
      }
      case "version":
        platform.stdout(`tbot v${TBOT_VERSION} (Keybound)\n`);
        return 0;
    }
  } catch (e) {
    return reportFailure(e, platform, log);
  }
  return 2;
}
