/**
 * `tctl tokens add`, `bots instances add`, `bots update` and
 * `bots instances ls --search` as real subprocesses against a real auth
 * service subprocess; a real tbot joins with what `tokens add` printed.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { runTbot } from "../tbot/_harness.ts";
import { type RunResult, startAuth, tctl } from "./_harness.ts";

function ok(r: RunResult): string {
  assertEquals(r.code, 0, `tctl failed: ${r.stderr}`);
  return r.stdout;
}

/** A usage error: exit 2, one `ERROR:` line that names `flag`. */
function usage(r: RunResult, flag: string): void {
  assertEquals(r.code, 2, `expected exit 2, got ${r.code}: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assertEquals(lines.length, 1, r.stderr);
  assertStringIncludes(lines[0], flag);
}

const ROLES = `kind: role
version: v7
metadata: {name: access}
spec: {allow: {logins: [ubuntu]}}
---
kind: role
version: v7
metadata: {name: deploy}
spec: {allow: {logins: [deploy]}}
---
kind: bot
version: v1
metadata: {name: web}
spec: {roles: [access]}
`;

Deno.test("tctl tokens add / bots instances add / bots update against a real auth service", async (t) => {
  const auth = await startAuth();
  const conn = ["--auth-server", auth.address, "-i", auth.identity];
  const run = (args: string[]) => tctl([...args, ...conn], { cwd: auth.workDir });
  const tokenNames = async () =>
    (JSON.parse(ok(await run(["tokens", "ls", "--format", "json"]))) as {
      metadata: { name: string };
    }[]).map((x) => x.metadata.name).sort();
  try {
    await Deno.writeTextFile(`${auth.workDir}/roles.yaml`, ROLES);
    ok(await run(["create", "roles.yaml"]));

    await t.step("bad input: one line naming the flag, exit 2, nothing created", async () => {
      const before = await tokenNames();
      usage(await run(["tokens", "add", "--bot-name", "web"]), "--type");
      usage(await run(["tokens", "add", "--type", "token", "--bot-name", "web"]), "--type");
      usage(await run(["tokens", "add", "--type=bound_keypair"]), "--bot-name");
      usage(
        await run(["tokens", "add", "--type=bound_keypair", "--bot-name", "a b"]),
        "--bot-name",
      );
      const base = ["tokens", "add", "--type=bound_keypair", "--bot-name", "web"];
      usage(await run([...base, "--recovery-limit", "-1"]), "--recovery-limit");
      usage(await run([...base, "--recovery-limit", "two"]), "--recovery-limit");
      usage(await run([...base, "--recovery-mode", "lax"]), "--recovery-mode");
      usage(await run([...base, "--ttl", "soon"]), "--ttl");
      usage(await run([...base, "--format", "yaml"]), "--format");
      // The key is parsed by the server (one place for that rule): exit 1, the field named.
      const badKey = await run([...base, "--initial-public-key", "nope"]);
      assertEquals(badKey.code, 1, badKey.stderr);
      assertStringIncludes(badKey.stderr, "initial_public_key");
      assertEquals(await tokenNames(), before);
    });

    await t.step("text: name, secret and a tbot start line a real tbot joins with", async () => {
      const out = ok(
        await run([
          "tokens",
          "add",
          "--type=bound_keypair",
          "--bot-name",
          "web",
          "--recovery-limit",
          "3",
          "--ttl",
          "1h",
        ]),
      );
      const name = out.match(
        /^Join token "([0-9a-f]{32})" for bot "web": bound_keypair, recovery 0\/3 standard, expires (\S+)\.$/m,
      );
      assert(name, out);
      const expires = Date.parse(name[2].replace(/\.$/, ""));
      assert(Math.abs(expires - Date.now() - 3600_000) < 120_000, `expires ${name[2]}`);
      const secret = out.match(/^Registration secret: ([0-9a-f]{32})$/m)?.[1];
      assert(secret, out);
      const line = out.match(/^ {2}TBOT_REGISTRATION_SECRET=(\S+) (tbot start .*)$/m);
      assert(line, out);
      assertEquals(line[1], secret);
      const argv = line[2].split(" ");
      assertEquals(argv.slice(0, 2), ["tbot", "start"]);
      assertEquals(argv[argv.indexOf("--token") + 1], name[1]);
      assertEquals(argv[argv.indexOf("--auth-server") + 1], auth.address);
      assertEquals(argv[argv.indexOf("--ca-pin") + 1], auth.caPin);
      // Run exactly that line, with the storage in a temp dir, once.
      const dir = await Deno.makeTempDir({ prefix: "tokens-add-tbot-" });
      try {
        const args = argv.slice(1);
        args[args.indexOf("--storage") + 1] = `${dir}/bot`;
        const r = await runTbot([...args, "--oneshot"], { TBOT_REGISTRATION_SECRET: secret });
        assertEquals(r.code, 0, r.stderr);
        const token = JSON.parse(ok(await run(["get", `token/${name[1]}`, "--format", "json"])))[0];
        assert(token.status.bound_keypair.bound_public_key, "the token is bound after the join");
        const instances = ok(await run(["bots", "instances", "ls", "web"]));
        assertStringIncludes(instances, "web/");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("json, with a pre-registered key: no secret, no secret env", async () => {
      const key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDtqJ7zOtqQtYqOo0CxrmdVh7T3yL1lrVyTo3Ka8oZ0s";
      const r = JSON.parse(ok(
        await run([
          "tokens",
          "add",
          "--type=bound_keypair",
          "--bot-name=web",
          "--initial-public-key",
          key,
          "--recovery-mode",
          "relaxed",
          "--format",
          "json",
        ]),
      ));
      assertMatch(r.token_name, /^[0-9a-f]{32}$/);
      assertEquals(r.bot_name, "web");
      assertEquals(r.initial_public_key, key);
      assertEquals(r.registration_secret, undefined);
      assertEquals(r.tbot_env, {});
      assertEquals(r.token.spec.bound_keypair.recovery, { limit: 1, mode: "relaxed" });
      assertEquals(r.tbot_start.slice(0, 2), ["tbot", "start"]);
    });

    await t.step(
      "bots instances add: a new token of an existing bot, printed the same",
      async () => {
        const before = await tokenNames();
        const missing = await run(["bots", "instances", "add", "nobody"]);
        assertEquals(missing.code, 1);
        assertStringIncludes(missing.stderr, 'bot "nobody" not found');
        assertEquals(await tokenNames(), before);
        const out = ok(await run(["bots", "instances", "add", "web"]));
        const name = out.match(/^Join token "([0-9a-f]{32})" for bot "web"/m)?.[1];
        assert(name, out);
        assertMatch(out, /^Registration secret: [0-9a-f]{32}$/m);
        assertMatch(out, /^ {2}TBOT_REGISTRATION_SECRET=[0-9a-f]{32} tbot start /m);
        assertEquals(await tokenNames(), [...before, name].sort());
      },
    );

    await t.step("bots instances ls --search", async () => {
      const all = ok(await run(["bots", "instances", "ls"]));
      assertStringIncludes(all, "web/");
      const hit = ok(await run(["bots", "instances", "ls", "--search", "WEB/"]));
      assertStringIncludes(hit, "web/");
      const none = ok(await run(["bots", "instances", "ls", "--search", "no-such-host"]));
      assertEquals(none.includes("web/"), false, none);
    });

    await t.step("bots update: add/set roles, traits, TTL; unknown roles refused", async () => {
      const get = async () =>
        JSON.parse(ok(await run(["get", "bot/web", "--format", "json"])))[0].spec;
      usage(await run(["bots", "update", "web"]), "--add-roles");
      usage(
        await run(["bots", "update", "web", "--add-roles", "a", "--set-roles", "b"]),
        "--set-roles",
      );
      usage(await run(["bots", "update", "web", "--max-session-ttl", "x"]), "--max-session-ttl");
      usage(await run(["bots", "update", "web", "--set-traits", "=x"]), "--set-traits");
      usage(
        await run(["bots", "update", "web", "--add-roles", "ghost"]),
        '--add-roles: role "ghost" not found',
      );
      assertEquals((await get()).roles, ["access"]);
      const missing = await run(["bots", "update", "nobody", "--add-roles", "deploy"]);
      assertEquals(missing.code, 1, missing.stderr);
      assertStringIncludes(missing.stderr, "nobody");
      ok(await run(["bots", "update", "web", "--add-roles", "deploy,access"]));
      assertEquals((await get()).roles, ["access", "deploy"]);
      ok(
        await run([
          "bots",
          "update",
          "web",
          "--set-roles",
          "deploy",
          "--set-traits",
          "logins=root,ubuntu,env=prod",
          "--max-session-ttl",
          "2h",
        ]),
      );
      const spec = await get();
      assertEquals(spec.roles, ["deploy"]);
      assertEquals(spec.traits, [
        { name: "logins", values: ["root", "ubuntu"] },
        { name: "env", values: ["prod"] },
      ]);
      assertEquals(spec.max_session_ttl, "2h");
      ok(await run(["bots", "update", "web", "--set-traits", ""]));
      assertEquals((await get()).traits, []);
    });
  } finally {
    await auth.stop();
  }
});
