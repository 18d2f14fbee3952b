/**
 * tbot run on a terminal with narrowed permissions never waits on one of
 * Deno's permission prompts (runtime-adapters/deno/permissions.ts): a
 * variable outside `--allow-env` is absent, a program outside `--allow-run`
 * is an error naming the flag. A real tbot under a pseudo-terminal
 * (`script`, util-linux), a real cluster over HTTPS on loopback.
 */
import { assert, assertEquals } from "../_assert.ts";
import { TBOT_DENO_FLAGS } from "../../runtime-adapters/deno/tbot_main.ts";
import { servedBot } from "./_served_bot.ts";
import { TBOT_MAIN } from "./_harness.ts";
import { ignoreUnless } from "../_tools.ts";

/** Deno's prompt, as it writes it on the terminal. */
const PROMPT = "Deno requests";

/** Why `script` cannot run here, or undefined. */
function noScript(): string | undefined {
  try {
    if (Deno.statSync("/usr/bin/script").isFile) return undefined;
  } catch { /* below */ }
  return "needs /usr/bin/script for a pseudo-terminal (apt-get install bsdutils)";
}

/** `argv` as one `sh` command line. */
const shellLine = (argv: string[]) => argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");

/**
 * Runs `argv` on a pseudo-terminal; returns what the terminal showed and the
 * exit code, or, as soon as Deno prompts, what it showed up to the prompt
 * (the process is killed: it would wait for an answer for ever).
 */
async function onTerminal(argv: string[], cwd: string) {
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

Deno.test({
  name: "narrowed permissions on a terminal: tbot asks nothing, reads no variable it may not, " +
    "and names the missing flag of a hook or of sharing",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  await using bot = await servedBot("tbot-narrowed-");
  const sleeper = new Deno.Command("sleep", { args: ["600"], stdin: "null" }).spawn();
  const storage = `${bot.dir}/bot`;
  const pidFile = `${bot.dir}/server.pid`;
  const output = (name: string, onRenew: string[], readers?: string) => [
    "  - type: identity",
    `    name: ${name}`,
    "    destination:",
    "      type: directory",
    `      path: ${storage}-${name}`,
    ...(readers ? [`      readers: ${readers}`] : []),
    "    on_renew:",
    ...onRenew.map((l) => `      ${l}`),
  ];
  /**
   * Runs tbot --oneshot on a terminal with `outputs`, under tbot's own flags with
   * --allow-env, --allow-run and --allow-sys narrowed: the variables tbot reads
   * (TBOT_*) set but not allowed, so reading one would prompt; /usr/bin/true (and
   * deno when `denoAllowed`) the only programs, by full path, and tbot's own PATH
   * without /usr/bin. The learned host CA is forgotten first, so each run makes
   * the pin's first contact.
   */
  const runWith = async (outputs: string[], denoAllowed: boolean) => {
    await Deno.remove(`${storage}/host_ca.pem`).catch(() => {});
    await Deno.remove(`${storage}/host_ca_pins`).catch(() => {});
    await bot.writeConfig({ storage });
    const yaml = (await Deno.readTextFile(bot.config))
      .replace("outputs: []", ["outputs:", ...outputs].join("\n"));
    await Deno.writeTextFile(bot.config, yaml);
    const flags = TBOT_DENO_FLAGS.map((f) =>
      f === "--allow-env"
        ? "--allow-env=HOME"
        : f === "--allow-run"
        ? `--allow-run=/usr/bin/true${denoAllowed ? `,${Deno.execPath()}` : ""}`
        : f.startsWith("--allow-sys")
        ? "--allow-sys=uid"
        : f
    );
    const run = await onTerminal(
      [
        "env",
        "PATH=/nonexistent",
        "TBOT_DEBUG=1",
        `TBOT_CONFIG_PATH=${bot.dir}/missing.yaml`,
        Deno.execPath(),
        "run",
        ...flags,
        TBOT_MAIN,
        "start",
        "-c",
        bot.config,
        "--oneshot",
      ],
      bot.dir,
    );
    assert(!run.prompted, `Deno prompted:\n${run.shown}`);
    // TBOT_DEBUG was not readable: no debug lines.
    assert(!run.shown.includes(" DEBUG "), run.shown);
    return run;
  };
  try {
    await Deno.writeTextFile(pidFile, `${sleeper.pid}\n`);
    // With deno allowed, the pin's first contact runs in a child (given only the
    // variables it may read); without, in tbot's process.
    for (const denoAllowed of [true, false]) {
      const run = await runWith([
        // Allowed by its full path only, found on the hooks' own search path.
        ...output("allowed", ['exec: ["true"]']),
        ...output("unlisted", ['exec: ["false"]']),
        ...output("signalled", ["signal: HUP", `pid_file: ${pidFile}`]),
      ], denoAllowed);
      assertEquals(run.code, 0, run.shown);
      assertEquals(
        run.shown.includes("the CA pin's first contact runs in this process"),
        !denoAllowed,
        run.shown,
      );
      assert(/reload hook ran .*service=allowed/.test(run.shown), run.shown);
      assert(
        /reload hook failed.*service=unlisted.*tbot may not start false: its --allow-run does not name it \(HOOK_FAILED\)/
          .test(run.shown),
        run.shown,
      );
      assert(
        /reload hook failed.*service=signalled.*tbot may not send signals/.test(run.shown),
        run.shown,
      );
      assert(await Deno.stat(`${storage}-allowed/tlscert`), "the outputs were written");
    }
    // Sharing an output starts setfacl (or chgrp), neither allowed: refused at start.
    const shared = await runWith(
      output("shared", ['exec: ["true"]'], "[{group: root}]"),
      true,
    );
    assertEquals(shared.code, 1, shared.shown);
    assert(
      /cannot share output "shared".*tbot may not start setfacl: its --allow-run does not name it \(SHARING_FAILED\)/
        .test(shared.shown),
      shared.shown,
    );
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
  }
});
