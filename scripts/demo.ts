/**
 * `deno task demo`: the seed guide ("Deploying Machine ID with Bound Keypair
 * Joining") end to end on this machine, with the embedded defaults: an auth
 * service on a Deno KV directory, tctl creating the bot and the token, and
 * tbot joining once, then refreshing without consuming a recovery.
 *
 * Everything runs as real subprocesses in a temporary directory that is
 * removed at the end.
 *
 * @module
 */

// First: refuses SIGUSR1 before anything else loads (see the module).
import "../runtime-adapters/deno/entry/inspector_guard.ts";
import {
  type AuthServiceProcess,
  spawnAuthService,
} from "../runtime-adapters/deno/auth_process.ts";
import { denoTask } from "./deno_task.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = Deno.execPath();

// Bold headings only on a terminal, and never when NO_COLOR is set (no-color.org).
const BOLD = Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");

function say(step: string) {
  console.log(BOLD ? `\n\x1b[1m==> ${step}\x1b[0m` : `\n==> ${step}`);
}

/** Runs deno task `name` with `args` after the task's own, and the task's variables set. */
async function run(
  name: string,
  args: string[],
  opts: { stdin?: string; env?: Record<string, string>; stdoutOnly?: boolean } = {},
): Promise<string> {
  const task = denoTask(name);
  const cmd = new Deno.Command(DENO, {
    args: [...task.args, ...args],
    cwd: ROOT,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { ...task.env, ...opts.env },
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(`command failed: deno ${args.slice(0, 4).join(" ")} ...\n${stderr}${stdout}`);
  }
  // Output that is parsed must be stdout alone: stderr may carry Deno's own lines (a first run's
  // "Download https://registry.npmjs.org/…"), which are shown instead.
  if (opts.stdoutOnly) {
    if (stderr) console.log(stderr.trimEnd());
    return stdout;
  }
  return stdout + (stderr ? `\n${stderr}` : "");
}

const tmp = await Deno.makeTempDir({ prefix: "keybound-demo-" });
const dataDir = `${tmp}/auth`;
const botStorage = `${tmp}/bot`;
const outDir = `${tmp}/out`;
let auth: AuthServiceProcess | undefined;

try {
  say("Start the auth service (Deno KV in a temporary directory)");
  // The `auth` task's own command line, as `deno task auth start` runs it.
  auth = await spawnAuthService({
    dataDir,
    command: [DENO, ...denoTask("auth").args],
    env: denoTask("auth").env,
    cwd: ROOT,
  });
  const { addr, caPin: pin } = auth;
  console.log(`Keybound auth service listening on ${auth.url}\nCA pin ${pin}`);

  const tctl = (...args: string[]) => run("tctl", ["--data-dir", dataDir, ...args]);
  const tctlJson = async (...args: string[]) =>
    JSON.parse(
      await run("tctl", ["--data-dir", dataDir, ...args, "--format=json"], {
        stdoutOnly: true,
      }),
    );

  say("tctl status");
  console.log((await tctl("status")).trim());

  say("Step 2/5: create the bot (bot.yaml)");
  const botYaml = `kind: bot\nversion: v1\nmetadata:\n  name: example\nspec:\n  roles: []\n`;
  await Deno.writeTextFile(`${tmp}/bot.yaml`, botYaml);
  console.log(botYaml.trim());
  console.log((await tctl("create", `${tmp}/bot.yaml`)).trim());

  say("Step 3/5: create a bound_keypair join token (token-example.yaml)");
  const tokenYaml = [
    "kind: token",
    "version: v2",
    "metadata:",
    "  name: example",
    "spec:",
    "  roles: [Bot]",
    "  bot_name: example",
    "  join_method: bound_keypair",
    "  bound_keypair:",
    "    recovery:",
    "      mode: standard",
    "      limit: 1",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${tmp}/token-example.yaml`, tokenYaml);
  console.log(tokenYaml.trim());
  console.log((await tctl("create", "-f", `${tmp}/token-example.yaml`)).trim());

  say("Read the generated registration secret (tctl get token/example --format=json)");
  const tokens = await tctlJson("get", "token/example");
  const secret: string = tokens[0].status.bound_keypair.registration_secret;
  console.log(`registration secret: ${secret.slice(0, 4)}… (${secret.length} hex characters)`);

  say("Step 4/5: configure tbot (tbot.yaml) and run it once (oneshot)");
  const tbotYaml = [
    "version: v2",
    `auth_server: ${addr}`,
    "oneshot: true",
    "onboarding:",
    "  join_method: bound_keypair",
    "  token: example",
    `  ca_pins: ["${pin}"]`,
    "  bound_keypair:",
    `    registration_secret: ${secret}`,
    "storage:",
    "  type: directory",
    `  path: ${botStorage}`,
    "outputs:",
    "  - type: identity",
    "    destination:",
    "      type: directory",
    `      path: ${outDir}`,
    "",
  ].join("\n");
  await Deno.writeTextFile(`${tmp}/tbot.yaml`, tbotYaml);
  console.log(tbotYaml.replace(secret, "<secret>").trim());
  const first = await run("tbot", ["start", "-c", `${tmp}/tbot.yaml`]);
  console.log(first.trim());

  say("Credentials tbot wrote");
  for (const dir of [botStorage, outDir]) {
    console.log(`${dir}:`);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    for (const n of names) {
      const st = Deno.statSync(`${dir}/${n}`);
      console.log(`  ${(st.mode! & 0o777).toString(8).padStart(4, "0")}  ${n}`);
    }
  }

  const before = (await tctlJson("get", "token/example"))[0].status
    .bound_keypair;
  say("Run tbot again: a refresh with the bound key, no recovery consumed");
  console.log((await run("tbot", ["start", "-c", `${tmp}/tbot.yaml`])).trim());
  const after = (await tctlJson("get", "token/example"))[0].status
    .bound_keypair;
  console.log(
    `recovery_count before: ${before.recovery_count}, after: ${after.recovery_count}; ` +
      `bound instance unchanged: ${before.bound_bot_instance_id === after.bound_bot_instance_id}`,
  );
  if (after.recovery_count !== before.recovery_count) {
    throw new Error("the refresh consumed a recovery");
  }

  say("Bot instances (tctl bots instances ls)");
  console.log((await tctl("bots", "instances", "ls")).trim());
  say("Done: the bot joined with its registration secret and refreshed with its own keypair.");
} finally {
  await auth?.stop();
  await Deno.remove(tmp, { recursive: true });
}
