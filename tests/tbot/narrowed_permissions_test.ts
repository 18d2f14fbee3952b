/**
 * tbot run on a terminal with narrowed permissions never waits on one of
 * Deno's permission prompts (runtime-adapters/deno/permissions.ts): a
 * variable outside `--allow-env` is absent, a program outside `--allow-run`
 * is an error naming the flag. A variable that decides security (the KEK's,
 * the credentials', the configuration's) outside `--allow-env` stops tbot
 * instead. A real tbot (under a pseudo-terminal: `script`, util-linux), a
 * real cluster over HTTPS on loopback.
 */
import { assert, assertEquals } from "../_assert.ts";
import { TBOT_DENO_FLAGS } from "../../runtime-adapters/deno/tbot_main.ts";
import { servedBot } from "./_served_bot.ts";
import { TBOT_MAIN, TBOT_SECURITY_VARIABLES } from "./_harness.ts";
import { ignoreUnless } from "../_tools.ts";
import { noScript, onTerminal } from "../cli/_terminal.ts";

/** The command line of `tbot start ...args --oneshot` under Deno `flags`. */
const tbotOneshot = (flags: string[], args: string[]) => [
  Deno.execPath(),
  "run",
  ...flags,
  TBOT_MAIN,
  "start",
  ...args,
  "--oneshot",
];

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
   * (TBOT_*) set but not allowed (those that decide security allowed and unset),
   * so reading one would prompt; /usr/bin/true (and
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
        ? `--allow-env=HOME,${TBOT_SECURITY_VARIABLES.join(",")}`
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
        ...tbotOneshot(flags, ["-c", bot.config]),
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
        /reload hook failed.*service=unlisted.*tbot may not start \/usr\/bin\/false: its --allow-run does not name it \(HOOK_FAILED\)/
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
      /cannot share output "shared".*tbot may not start \/usr\/bin\/setfacl: its --allow-run does not name it \(SHARING_FAILED\)/
        .test(shared.shown),
      shared.shown,
    );
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
  }
});

Deno.test("a KEK variable outside a narrowed --allow-env stops tbot: no key is written unencrypted", async () => {
  await using bot = await servedBot("tbot-narrowed-kek-");
  const storage = `${bot.dir}/bot`;
  await bot.writeConfig({ storage });
  const kek = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  /** tbot --oneshot under a service manager (no terminal), `allowEnv` its --allow-env. */
  const run = async (allowEnv: string, args = ["-c", bot.config], env = {}) => {
    const flags = TBOT_DENO_FLAGS.map((f) => f === "--allow-env" ? allowEnv : f);
    const [deno, ...argv] = tbotOneshot(flags, args);
    const out = await new Deno.Command(deno, {
      args: argv,
      cwd: bot.dir,
      env: { TBOT_STORAGE_KEK: kek, NO_COLOR: "1", ...env },
      stdin: "null",
    }).output();
    return { code: out.code, log: new TextDecoder().decode(out.stderr) };
  };
  const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
  const refused = (log: string, variable: string) =>
    new RegExp(
      `tbot may not read ${variable}: its --allow-env does not name it, and it decides ` +
        `whether private keys are sealed: allow TBOT_STORAGE_KEK,TBOT_STORAGE_KEK_PATH ` +
        `\\(--allow-env=TBOT_STORAGE_KEK,TBOT_STORAGE_KEK_PATH,…; they may stay unset\\) ` +
        `or set storage.kek_path .*code=CONFIG_INVALID`,
    ).test(log);

  // The first join: refused before anything is written (it used to write id_bkp in PEM).
  const narrowed = `--allow-env=HOME,TBOT_BOUND_KEYPAIR_STATIC_KEY,TBOT_REGISTRATION_SECRET`;
  const first = await run(narrowed);
  assertEquals(first.code, 1, first.log);
  assert(refused(first.log, "TBOT_STORAGE_KEK_PATH"), first.log);
  assert(!await exists(`${storage}/id_bkp`), "no key was written");
  // The variable itself hidden, its path allowed (and unset): named too.
  const second = await run(`${narrowed},TBOT_STORAGE_KEK_PATH`);
  assertEquals(second.code, 1, second.log);
  assert(refused(second.log, "TBOT_STORAGE_KEK"), second.log);
  assert(!await exists(`${storage}/id_bkp`), "no key was written");

  // Allowed: joins and seals.
  const sealed = await run(`${narrowed},TBOT_STORAGE_KEK,TBOT_STORAGE_KEK_PATH`);
  assertEquals(sealed.code, 0, sealed.log);
  const idBkp = await Deno.readTextFile(`${storage}/id_bkp`);
  assert(idBkp.startsWith("KEYBOUND-SEALED-V1 "), idBkp.slice(0, 30));

  // Already sealed, then hidden: the same refusal (not "none is configured"), storage untouched.
  const again = await run(narrowed);
  assertEquals(again.code, 1, again.log);
  assert(refused(again.log, "TBOT_STORAGE_KEK_PATH"), again.log);
  assert(!again.log.includes("none is configured"), again.log);
  assertEquals(await Deno.readTextFile(`${storage}/id_bkp`), idBkp);

  // storage.kek_path needs neither variable.
  await Deno.writeTextFile(`${bot.dir}/kek`, kek);
  await bot.writeConfig({ storage, kekPath: `${bot.dir}/kek` });
  const byPath = await run(narrowed);
  assertEquals(byPath.code, 0, byPath.log);

  // No -c: the configuration's variables decide what tbot trusts; hidden, they stop it.
  const noConfig = await run(`${narrowed},TBOT_STORAGE_KEK,TBOT_STORAGE_KEK_PATH`, [], {
    TBOT_CONFIG_PATH: bot.config,
  });
  assertEquals(noConfig.code, 1, noConfig.log);
  assert(
    /tbot may not read TBOT_CONFIG_PATH: its --allow-env does not name it.*code=CONFIG_INVALID/
      .test(noConfig.log),
    noConfig.log,
  );
});

Deno.test({
  name:
    "a narrowed --allow-net on a terminal: tbot asks nothing; a diag_addr outside it is an error",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  await using bot = await servedBot("tbot-narrowed-net-");
  const storage = `${bot.dir}/bot`;
  await bot.writeConfig({ storage });
  const yaml = await Deno.readTextFile(bot.config);
  const auth = /auth_server: (\S+)/.exec(yaml)![1];
  /** tbot --oneshot on a terminal, allowed to reach its auth server only. */
  const run = (denoAllowed: boolean) =>
    onTerminal(
      tbotOneshot(
        TBOT_DENO_FLAGS.map((f) =>
          f === "--allow-net"
            ? `--allow-net=${auth}`
            : f === "--allow-run" && !denoAllowed
            ? "--allow-run=/usr/bin/true"
            : f
        ),
        ["-c", bot.config],
      ),
      bot.dir,
    );
  // The root-store proof (a listener on 127.0.0.1:0) is skipped, with the pin's first
  // contact in a child or in this process; the join still trusts the learned CA only.
  for (const denoAllowed of [true, false]) {
    // The learned host CA forgotten: each run makes the pin's first contact.
    await Deno.remove(`${storage}/host_ca.pem`).catch(() => {});
    await Deno.remove(`${storage}/host_ca_pins`).catch(() => {});
    const joined = await run(denoAllowed);
    assert(!joined.prompted, `Deno prompted:\n${joined.shown}`);
    assertEquals(joined.code, 0, joined.shown);
    assert(await Deno.stat(`${storage}/host_ca.pem`), "the host CA was learned");
  }
  await Deno.writeTextFile(bot.config, `${yaml}\ndiag_addr: 127.0.0.1:0\n`);
  const diag = await run(true);
  assert(!diag.prompted, `Deno prompted:\n${diag.shown}`);
  assertEquals(diag.code, 1, diag.shown);
  assert(
    /diag_addr 127\.0\.0\.1:0: tbot may not use 127\.0\.0\.1:0: its --allow-net does not name it.*code=CONFIG_INVALID/
      .test(diag.shown),
    diag.shown,
  );
});

/** Why /bin and /usr/bin do not both hold `true` and `setfacl` (a merged /usr), or undefined. */
function noMergedUsr(): string | undefined {
  for (const place of ["/bin/true", "/usr/bin/true", "/bin/setfacl", "/usr/bin/setfacl"]) {
    try {
      Deno.statSync(place);
    } catch {
      return `needs ${place} (a merged /usr with the acl package)`;
    }
  }
  return noScript();
}

Deno.test({
  name: "a hook or sharing program is checked where it is started: the first place on the " +
    "hooks' PATH, whatever tbot's own PATH or a later place allows",
  ignore: ignoreUnless("narrowed permissions test", noMergedUsr()),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "tbot-run-check-" });
  try {
    // A `true` of tbot's own PATH that shadows the hooks' /usr/bin/true.
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(`${dir}/bin/true`, "#!/bin/sh\n", { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/shared`, "");
    const start = (
      allowRun: string,
      kind: string,
      target: string,
      path = "/usr/bin:/bin",
      allowRead = "--allow-read",
    ) =>
      onTerminal([
        "env",
        `PATH=${path}`,
        Deno.execPath(),
        "run",
        allowRead,
        "--allow-env",
        allowRun === "" ? "--allow-run" : `--allow-run=${allowRun}`,
        new URL("./_start_program.ts", import.meta.url).pathname,
        kind,
        target,
      ], dir);
    const cases: [string, string, string, string | undefined, string][] = [
      // /bin/true is allowed, but /usr/bin comes first on the hooks' PATH.
      ["/bin/true", "hook", "true", undefined, "tbot may not start /usr/bin/true: its --allow-run"],
      // "true" is allowed as tbot's PATH finds it (dir/bin/true), not as the hook does.
      ["true", "hook", "true", `${dir}/bin:/usr/bin`, "tbot may not start /usr/bin/true:"],
      ["/bin/setfacl", "share", `${dir}/shared`, undefined, "tbot may not start /usr/bin/setfacl:"],
      ["/usr/bin/true", "hook", "true", undefined, "RESULT ran"],
      ["/usr/bin/setfacl", "share", `${dir}/shared`, undefined, "RESULT ran"],
    ];
    for (const [allowRun, kind, target, path, expected] of cases) {
      const run = await start(allowRun, kind, target, path);
      assert(!run.prompted, `--allow-run=${allowRun} ${kind}: Deno prompted:\n${run.shown}`);
      assert(run.shown.includes(expected), `--allow-run=${allowRun} ${kind}:\n${run.shown}`);
    }
    // The whole --allow-run and a narrowed --allow-read (review-nt M1): Deno finds the
    // program as it always did; nothing asks to read the places on the PATH.
    for (const [kind, target] of [["hook", "true"], ["share", `${dir}/shared`]]) {
      const run = await start("", kind, target, undefined, `--allow-read=${dir}`);
      assert(!run.prompted, `--allow-run, narrowed --allow-read, ${kind}: Deno prompted`);
      assert(run.shown.includes("RESULT ran"), `whole --allow-run ${kind}:\n${run.shown}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "--deny-run, --deny-env and a missing --allow-sys=uid on a terminal: tbot asks nothing " +
    "and names what is denied and what needs it",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  await using bot = await servedBot("tbot-denied-");
  const sleeper = new Deno.Command("sleep", { args: ["600"], stdin: "null" }).spawn();
  const storage = `${bot.dir}/bot`;
  const pidFile = `${bot.dir}/server.pid`;
  /** tbot --oneshot on a terminal with `outputs`, its flags changed by `flags`. */
  const run = async (outputs: string[], flags: (f: string[]) => string[]) => {
    await bot.writeConfig({ storage });
    const yaml = (await Deno.readTextFile(bot.config))
      .replace("outputs: []", ["outputs:", ...outputs].join("\n"));
    await Deno.writeTextFile(bot.config, yaml);
    const r = await onTerminal(tbotOneshot(flags(TBOT_DENO_FLAGS), ["-c", bot.config]), bot.dir);
    assert(!r.prompted, `Deno prompted:\n${r.shown}`);
    // Deno's own words never reach the operator.
    assert(!r.shown.includes("Requires "), r.shown);
    return r;
  };
  const output = (name: string, lines: string[], readers?: string) => [
    "  - type: identity",
    `    name: ${name}`,
    "    destination:",
    "      type: directory",
    `      path: ${storage}-${name}`,
    ...(readers ? [`      readers: ${readers}`] : []),
    ...lines.map((l) => `    ${l}`),
  ];
  try {
    await Deno.writeTextFile(pidFile, `${sleeper.pid}\n`);
    // A denied program fails its hook by name; others run. The YAML parser's LOG_TOKENS,
    // denied, reads as unset (Deno refused the parse itself before).
    const denied = await run([
      ...output("denied", ["on_renew:", '  exec: ["false"]']),
      ...output("allowed", ["on_renew:", '  exec: ["true"]']),
    ], (f) => [...f, "--deny-run=/usr/bin/false", "--deny-env=LOG_TOKENS"]);
    assertEquals(denied.code, 0, denied.shown);
    assert(
      /reload hook failed.*service=denied.*tbot may not start \/usr\/bin\/false: its --deny-run names it \(HOOK_FAILED\)/
        .test(denied.shown),
      denied.shown,
    );
    assert(/reload hook ran .*service=allowed/.test(denied.shown), denied.shown);

    // A denied variable that decides security stops tbot, naming --deny-env.
    const kek = await run([], (f) => [...f, "--deny-env=TBOT_STORAGE_KEK"]);
    assertEquals(kek.code, 1, kek.shown);
    assert(
      /tbot may not read TBOT_STORAGE_KEK: its --deny-env names it, and it decides whether private keys are sealed: take TBOT_STORAGE_KEK out of --deny-env or set storage.kek_path .*code=CONFIG_INVALID/
        .test(kek.shown),
      kek.shown,
    );

    // Sharing's setfacl denied: refused at start, naming it and the output.
    if (!noMergedUsr()) {
      const shared = await run(
        output("shared", [], "[{group: root}]"),
        (f) => [...f, "--deny-run=/usr/bin/setfacl"],
      );
      assertEquals(shared.code, 1, shared.shown);
      assert(
        /cannot share output "shared".*tbot may not start \/usr\/bin\/setfacl: its --deny-run names it \(SHARING_FAILED\)/
          .test(shared.shown),
        shared.shown,
      );
    }

    // A PID file's owner is checked against this user: without --allow-sys=uid the
    // signal hook fails by name (Deno would prompt for the uid).
    const noUid = await run(
      output("signalled", ["on_renew:", "  signal: HUP", `  pid_file: ${pidFile}`]),
      (f) => f.map((x) => x.startsWith("--allow-sys") ? "--allow-sys=hostname,osRelease,gid" : x),
    );
    assertEquals(noUid.code, 0, noUid.shown);
    assert(
      /reload hook failed.*service=signalled.*tbot may not read the system's uid: its --allow-sys does not name it \(HOOK_FAILED\)/
        .test(noUid.shown),
      noUid.shown,
    );
    assertEquals(await Deno.readTextFile(pidFile), `${sleeper.pid}\n`);
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
  }
});

Deno.test({
  name: "a narrowed --allow-read or --allow-write on a terminal: tbot asks nothing; a path " +
    "outside them stops it at start, naming the path, its field and the flag",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  await using bot = await servedBot("tbot-narrowed-fs-");
  const sleeper = new Deno.Command("sleep", { args: ["600"], stdin: "null" }).spawn();
  const storage = `${bot.dir}/bot`;
  const out = `${bot.dir}/out`;
  const serverPid = `${bot.dir}/server.pid`;
  const run_ = `${bot.dir}/run`;
  const tbotPid = `${run_}/tbot.pid`;
  const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
  await bot.writeConfig({ storage });
  await Deno.writeTextFile(
    bot.config,
    (await Deno.readTextFile(bot.config)).replace(
      "outputs: []",
      [
        "outputs:",
        "  - type: identity",
        "    destination:",
        "      type: directory",
        `      path: ${out}`,
        "    on_renew:",
        "      signal: HUP",
        `      pid_file: ${serverPid}`,
      ].join("\n"),
    ),
  );
  const reads = [bot.config, storage, out, serverPid, run_];
  const writes = [storage, out, run_];
  /** tbot --oneshot on a terminal, allowed to read `read` and write `write` only. */
  const run = async (read: string[], write: string[], extra: string[] = []) => {
    const flags = TBOT_DENO_FLAGS.map((f) =>
      f === "--allow-read"
        ? `--allow-read=${read.join(",")}`
        : f === "--allow-write"
        ? `--allow-write=${write.join(",")}`
        : f
    );
    const r = await onTerminal(
      tbotOneshot([...flags, ...extra], ["-c", bot.config, "--pid-file", tbotPid]),
      bot.dir,
    );
    assert(!r.prompted, `Deno prompted:\n${r.shown}`);
    assert(!r.shown.includes("Requires "), r.shown);
    return r;
  };
  const without = (list: string[], path: string) => list.filter((p) => p !== path);
  /** A refused start: one CONFIG_INVALID line naming `field`, and nothing written. */
  const refused = async (r: { code: number; shown: string }, field: string, says: string) => {
    assertEquals(r.code, 1, r.shown);
    assert(
      new RegExp(`${field}: tbot may ${says}.*CONFIG_INVALID`).test(r.shown),
      `${field}:\n${r.shown}`,
    );
    assert(!await exists(storage), `nothing was written:\n${r.shown}`);
    assert(!await exists(tbotPid), "no pid file");
  };
  try {
    await Deno.writeTextFile(serverPid, `${sleeper.pid}\n`);
    await Deno.mkdir(run_);
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    await refused(
      await run(reads, without(writes, out)),
      esc("services[0].destination.path"),
      `not write ${esc(out)}: its --allow-write does not name it`,
    );
    await refused(
      await run(reads, writes, [`--deny-write=${out}`]),
      esc("services[0].destination.path"),
      `not write ${esc(out)}: its --deny-write names it`,
    );
    // Written atomically: a new file in its directory, renamed over it.
    await refused(
      await run(reads, [...without(writes, run_), tbotPid]),
      `--pid-file ${esc(tbotPid)} \\(written through its directory\\)`,
      `not write ${esc(run_)}: its --allow-write does not name it`,
    );
    await refused(
      await run(without(reads, serverPid), writes),
      esc("services[0].on_renew.pid_file"),
      `not read ${esc(serverPid)}: its --allow-read does not name it`,
    );
    await refused(
      await run(without(reads, storage), writes),
      "storage.path",
      `not read ${esc(storage)}: its --allow-read does not name it`,
    );
    await refused(
      await run(without(reads, bot.config), writes),
      "-c",
      `not read ${esc(bot.config)}: its --allow-read does not name it`,
    );
    // Everything it uses allowed: it joins, writes the output and runs the hook, asking nothing.
    const joined = await run(reads, writes);
    assertEquals(joined.code, 0, joined.shown);
    assert(await exists(`${out}/tlscert`), joined.shown);
    assert(!await exists(tbotPid), "the pid file is removed at exit");
    // The signal hook read its pid file and signalled.
    assertEquals((await sleeper.status).signal, "SIGHUP", joined.shown);

    // A Deno KV file: its journals are made and restricted beside it, so its directory.
    const kvDir = `${bot.dir}/kv`;
    const kv = `${kvDir}/bot.kv`;
    const config = await Deno.readTextFile(bot.config);
    await Deno.writeTextFile(
      bot.config,
      config.replace(`  type: directory\n  path: ${storage}`, `  type: deno_kv\n  path: ${kv}`)
        .replace(/ {4}on_renew:\n.*\n.*\n/, ""),
    );
    const kvReads = [...without(reads, storage), kvDir];
    const kvWrites = [...without(writes, storage), kvDir];
    const fileOnly = await run([...without(kvReads, kvDir), kv], [...without(kvWrites, kvDir), kv]);
    assertEquals(fileOnly.code, 1, fileOnly.shown);
    assert(
      new RegExp(
        `storage\\.path ${esc(kv)} \\(written through its directory\\): tbot may not read ` +
          `${esc(kvDir)}: its --allow-read does not name it.*CONFIG_INVALID`,
      ).test(fileOnly.shown),
      fileOnly.shown,
    );
    assert(!await exists(kvDir), "nothing was written");
    // Opened and used, asking nothing; the join is then refused, as it should be: the
    // token is bound to the key the directory storage above holds, not this new one.
    const onKv = await run(kvReads, kvWrites);
    assert(await exists(kv), onKv.shown);
    assert(/join refused.*code=CHALLENGE_FAILED/.test(onKv.shown), onKv.shown);
  } finally {
    try {
      sleeper.kill("SIGKILL");
    } catch { /* signalled by the hook */ }
    await sleeper.status;
  }
});

Deno.test({
  name: "configure -o, install systemd and keypair create under a narrowed --allow-read or " +
    "--allow-write on a terminal: a file outside them is refused by name, never prompted for",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "tbot-narrowed-cmds-" });
  const yes = `${dir}/yes`;
  const no = `${dir}/no`;
  /** `tbot args` on a terminal, allowed to read and write `yes` only. */
  const tbot = async (args: string[]) => {
    const flags = TBOT_DENO_FLAGS.map((f) =>
      f === "--allow-read"
        ? `--allow-read=${yes}`
        : f === "--allow-write"
        ? `--allow-write=${yes}`
        : f
    );
    const r = await onTerminal([Deno.execPath(), "run", ...flags, TBOT_MAIN, ...args], dir);
    assert(!r.prompted, `${args.join(" ")}: Deno prompted:\n${r.shown}`);
    assert(!r.shown.includes("Requires "), r.shown);
    return r;
  };
  const refused = (r: { code: number; shown: string }, line: string) => {
    assertEquals(r.code, 1, r.shown);
    assert(r.shown.includes(line) && r.shown.includes("CONFIG_INVALID"), `${line}:\n${r.shown}`);
  };
  try {
    await Deno.mkdir(yes);
    await Deno.mkdir(no);
    const configure = [
      "configure",
      "identity",
      "--destination",
      `${yes}/out`,
      "--storage",
      `${yes}/bot`,
      "--auth-server",
      "127.0.0.1:7",
      "--token",
      "t",
      "-o",
    ];
    const notRead = `tbot may not read ${no}: its --allow-read does not name it`;
    refused(
      await tbot([...configure, `${no}/tbot.yaml`]),
      `--output ${no}/tbot.yaml (written through its directory): ${notRead}`,
    );
    assertEquals((await tbot([...configure, `${yes}/tbot.yaml`])).code, 0);
    const install = ["install", "systemd", "--write", "--systemd-directory"];
    refused(
      await tbot([...install, no, "-c", `${yes}/tbot.yaml`]),
      `--systemd-directory ${no}/tbot.service (written through its directory): ${notRead}`,
    );
    refused(
      await tbot([...install, yes, "-c", `${no}/tbot.yaml`]),
      `-c: tbot may not read ${no}/tbot.yaml: its --allow-read does not name it`,
    );
    refused(
      await tbot(["keypair", "create", "--proxy-server", "127.0.0.1:1", "--storage", `${no}/bot`]),
      `--storage: tbot may not read ${no}/bot: its --allow-read does not name it`,
    );
    refused(
      await tbot([
        "keypair",
        "create",
        "--proxy-server",
        "127.0.0.1:1",
        "--static",
        "--static-key-path",
        `${no}/key`,
      ]),
      `--static-key-path ${no}/key (written through its directory): ${notRead}`,
    );
    assertEquals([...Deno.readDirSync(no)], [], "nothing was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the tbot task's launcher under a narrowed --allow-read on a terminal: one line naming " +
    "the checkout it must read, never a prompt",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
  const launcher = `${root}/runtime-adapters/deno/entry/tbot_launch.ts`;
  const dir = await Deno.makeTempDir({ prefix: "tbot-narrowed-launch-" });
  /** `tbot version` through the launcher, allowed to read `reads` only. */
  const run = async (reads: string) => {
    const flags = TBOT_DENO_FLAGS.map((f) => f === "--allow-read" ? `--allow-read=${reads}` : f);
    const r = await onTerminal([Deno.execPath(), "run", ...flags, launcher, "version"], dir);
    assert(!r.prompted, `Deno prompted:\n${r.shown}`);
    return r;
  };
  try {
    const narrowed = await run(dir);
    assertEquals(narrowed.code, 1, narrowed.shown);
    assert(
      narrowed.shown.includes(
        `tbot: error [CONFIG_INVALID]: tbot may not read ${root}: its --allow-read does not ` +
          `name it (the tbot task's launcher loads tbot from there)`,
      ),
      narrowed.shown,
    );
    const withCheckout = await run(`${dir},${root}`);
    assertEquals(withCheckout.code, 0, withCheckout.shown);
    assert(withCheckout.shown.includes("tbot v"), withCheckout.shown);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
