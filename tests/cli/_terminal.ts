/**
 * A program run on a real pseudo-terminal (`script`, util-linux), to see
 * whether Deno stops on one of its permission prompts: narrowed permissions
 * must give an error instead (runtime-adapters/deno/permissions.ts). Shared
 * by the tbot and tctl tests.
 *
 * @module
 */

/** Deno's prompt, as it writes it on the terminal. */
const PROMPT = "Deno requests";

/** Why `script` cannot run here, or undefined. */
export function noScript(): string | undefined {
  try {
    if (Deno.statSync("/usr/bin/script").isFile) return undefined;
  } catch { /* below */ }
  return "needs /usr/bin/script for a pseudo-terminal (apt-get install bsdutils)";
}

/** `argv` as one `sh` command line. */
const shellLine = (argv: string[]) => argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");

/** What {@linkcode onTerminal} saw. */
export interface TerminalRun {
  /** What the terminal showed (standard output and error together). */
  shown: string;
  /** Whether Deno prompted (the process was then killed). */
  prompted: boolean;
  /** The exit code. */
  code: number;
}

/**
 * Runs `argv` on a pseudo-terminal, with only PATH, HOME and DENO_DIR of
 * this environment (prefix `env NAME=VALUE` for more); returns what the
 * terminal showed and the exit code, or, as soon as Deno prompts, what it
 * showed up to the prompt (the process is killed: it would wait for an
 * answer for ever).
 */
export async function onTerminal(argv: string[], cwd: string): Promise<TerminalRun> {
  const env: Record<string, string> = { NO_COLOR: "1", TERM: "dumb" };
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const child = new Deno.Command("/usr/bin/script", {
    args: ["-qec", shellLine(argv), "/dev/null"],
    cwd,
    clearEnv: true,
    env,
    // Held open and never written: an answer to a prompt can only come from here.
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let shown = "";
  let prompted = false;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    shown += chunk;
    if (shown.includes(PROMPT)) {
      prompted = true;
      // The terminal goes with it: its prompt reads end of input, a denial.
      child.kill("SIGKILL");
      break;
    }
  }
  await child.stdin.close().catch(() => {});
  await child.stderr.cancel();
  const status = await child.status;
  return { shown, prompted, code: status.code };
}
