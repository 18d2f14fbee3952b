/**
 * tctl commands as a real subprocess against a real auth service subprocess.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { type AuthProcess, type RunResult, startAuth, tctl } from "./_harness.ts";

function ok(r: RunResult): string {
  assertEquals(r.code, 0, `tctl failed: ${r.stderr}`);
  assertEquals(r.stderr, "");
  return r.stdout;
}

function fails(r: RunResult, includes: string): void {
  assert(r.code !== 0, `expected failure, got exit 0 with ${r.stdout}`);
  assertEquals(r.stderr.split("\n").filter((l) => l !== "").length, 1, "one error line");
  assert(r.stderr.startsWith("tctl: error ["), r.stderr);
  assertStringIncludes(r.stderr, includes);
}

const ROLE_AND_BOT = `kind: role
version: v7
metadata:
  name: access
spec:
  allow:
    logins: [ubuntu]
---
kind: bot
version: v1
metadata:
  name: web
spec:
  roles: [access]
`;

Deno.test("tctl against a real auth service", async (t) => {
  const auth: AuthProcess = await startAuth();
  // Global flags go before or after the command.
  const before = ["--auth-server", auth.address, "-i", auth.identity];
  const after = [`--auth-server=${auth.address}`, `--identity=${auth.identity}`];
  const run = (args: string[], cwd = auth.workDir) => tctl([...before, ...args], { cwd });
  const runAfter = (args: string[]) => tctl([...args, ...after], { cwd: auth.workDir });
  try {
    await t.step("create a multi-document file; get with singular and plural kinds", async () => {
      await Deno.writeTextFile(`${auth.workDir}/rb.yaml`, ROLE_AND_BOT);
      assertEquals(
        ok(await run(["create", "rb.yaml"])),
        'role "access" has been created\nbot "web" has been created\n',
      );
      const bots = JSON.parse(ok(await runAfter(["get", "bots", "--format", "json"])));
      assertEquals(bots.map((b: { metadata: { name: string } }) => b.metadata.name), ["web"]);
      assertEquals(bots[0].status, { user_name: "bot-web", role_name: "bot-web" });
      const one = JSON.parse(ok(await runAfter(["get", "bot/web", "--format=json"])));
      assert(Array.isArray(one) && one.length === 1, "json output is an array");
      const yaml = ok(await run(["get", "role/access"]));
      assertStringIncludes(yaml, "kind: role\n");
      assertStringIncludes(yaml, "- ubuntu\n");
      assertStringIncludes(ok(await run(["get", "roles", "--format", "text"])), "access  ubuntu");
    });

    await t.step(
      "invalid files are refused with file, document and field path; nothing is written",
      async () => {
        const bad =
          `kind: lock\nversion: v2\nmetadata: {name: first}\nspec: {target: {user: x}}\n---\n` +
          `kind: token\nversion: v2\nmetadata: {name: t}\nspec:\n  roles: [Bot]\n  bot_name: web\n` +
          `  join_method: bound_keypair\n  bound_keypair:\n    recovery: {limit: "2"}\n`;
        await Deno.writeTextFile(`${auth.workDir}/bad.yaml`, bad);
        fails(
          await run(["create", "bad.yaml"]),
          "bad.yaml: document 2: spec.bound_keypair.recovery.limit: expected number, received string (line 14)",
        );
        assertEquals(JSON.parse(ok(await run(["get", "locks", "--format", "json"]))), []);
        await Deno.writeTextFile(`${auth.workDir}/syntax.yaml`, "kind: bot\nspec: [a\n");
        fails(
          await run(["create", "syntax.yaml"]),
          "syntax.yaml: document 1: invalid YAML at line",
        );
        fails(await run(["create", "missing.yaml"]), "cannot read missing.yaml");
      },
    );

    await t.step("server errors carry code and message", async () => {
      fails(await run(["get", "token/nope"]), '[NOT_FOUND]: token "nope" not found');
      fails(await run(["rm", "bot/nope"]), "[NOT_FOUND]");
      fails(await run(["get", "users"]), 'unknown resource kind "users"');
    });

    await t.step("an initial_public_key that does not parse is refused by the server", async () => {
      const token = `kind: token\nversion: v2\nmetadata: {name: pre}\nspec:\n  roles: [Bot]\n` +
        `  bot_name: web\n  join_method: bound_keypair\n  bound_keypair:\n` +
        `    onboarding: {initial_public_key: "ssh-ed25519 bm90IGEga2V5"}\n`;
      await Deno.writeTextFile(`${auth.workDir}/pre.yaml`, token);
      fails(await run(["create", "pre.yaml"]), "spec.bound_keypair.onboarding.initial_public_key:");
    });

    await t.step(
      "bots add creates the bot and a bound_keypair token, printing secret and tbot.yaml",
      async () => {
        fails(await run(["bots", "add", "api", "--roles", "missing"]), 'role "missing" not found');
        const out = ok(
          await run([
            "bots",
            "add",
            "api",
            "--roles",
            "access",
            "--logins",
            "root,deploy",
            "--recovery-limit",
            "3",
          ]),
        );
        const secret = /Registration secret: ([0-9a-f]{32})/.exec(out)?.[1];
        assert(secret, out);
        assertStringIncludes(out, `auth_server: ${auth.address}\n`);
        assertStringIncludes(out, `    registration_secret: ${secret}\n`);
        assertStringIncludes(out, `    - ${auth.caPin}\n`);
        const [bot] = JSON.parse(ok(await run(["get", "bot/api", "--format", "json"])));
        assertEquals(bot.spec.traits, [{ name: "logins", values: ["root", "deploy"] }]);
        const [token] = JSON.parse(ok(await run(["get", "token/api", "--format", "json"])));
        assertEquals(token.spec.bound_keypair.recovery, { limit: 3, mode: "standard" });
        assertEquals(token.status.bound_keypair.registration_secret, secret);
        assertStringIncludes(ok(await run(["bots", "ls"])), "api  bot-api  access");
        const tokens = ok(await run(["tokens", "ls"]));
        assertMatch(tokens, /api\s+bound_keypair\s+api\s+0\/3 standard\s+awaiting join \(secret\)/);
        fails(await run(["bots", "add", "api"]), 'token "api" already exists');
        assertEquals(ok(await run(["bots", "rm", "api"])), 'Bot "api" deleted successfully.\n');
        assertEquals(ok(await run(["tokens", "rm", "api"])), "Token api has been deleted\n");
        assertEquals(JSON.parse(ok(await run(["tokens", "ls", "--format", "json"]))), []);
      },
    );

    await t.step("bound-keypair rotate sets rotate_after", async () => {
      ok(await run(["bots", "add", "rot", "--recovery-mode", "relaxed"]));
      assertStringIncludes(ok(await run(["bound-keypair", "rotate", "rot"])), "will rotate");
      const [token] = JSON.parse(ok(await run(["get", "token/rot", "--format", "json"])));
      assert(!Number.isNaN(Date.parse(token.spec.bound_keypair.rotate_after)), "rotate_after set");
      fails(await run(["bound-keypair", "rotate", "nope"]), "[NOT_FOUND]");
    });

    await t.step("locks: create, list, audit, remove", async () => {
      fails(await run(["lock"]), "--join-token");
      fails(await run(["lock", "--join-token=rot", "--expires", "tomorrow"]), "--expires");
      const created = ok(await run(["lock", "--join-token=rot", "--message", "stolen laptop"]));
      const name = /name "([0-9a-f-]{36})"/.exec(created)?.[1];
      assert(name, created);
      ok(await run(["lock", "--bot-instance-id", "0000", "--ttl", "1h"]));
      ok(await run(["lock", "--user", "bot-rot", "--expires", "2099-01-01T00:00:00Z"]));
      const table = ok(await run(["locks", "ls"]));
      assertStringIncludes(table, `${name}  join_token=rot`);
      assertStringIncludes(table, "stolen laptop");
      assertStringIncludes(table, "user=bot-rot");
      const [lock] = JSON.parse(ok(await run(["get", `lock/${name}`, "--format", "json"])));
      assertEquals(lock.spec.created_by, "admin");
      const events = JSON.parse(
        ok(await run(["audit", "ls", "--type", "lock.created", "--format", "json"])),
      );
      assertEquals(events.length, 3);
      assertEquals(events[2].lock_name, name, "newest first");
      assertEquals(ok(await run(["rm", `lock/${name}`])), `lock "${name}" has been deleted\n`);
      const deleted = JSON.parse(
        ok(await run(["audit", "ls", "--type=resource.deleted", "--format=json"])),
      );
      assertEquals([deleted[0].kind, deleted[0].name], ["lock", name]);
      assertStringIncludes(ok(await run(["audit", "ls", "--limit", "2"])), "Time");
    });

    await t.step("usage errors exit 2 with one line", async () => {
      const unknown = await run(["frobnicate"]);
      assertEquals(unknown.code, 2);
      fails(unknown, 'unknown command "frobnicate"');
      const flag = await run(["get", "bots", "--roles", "x"]);
      assertEquals(flag.code, 2);
      fails(flag, "get: flag --roles is not accepted here");
      fails(await run(["get", "bots", "--format", "xml"]), 'unsupported format "xml"');
      fails(await run(["bots"]), "expected one of: ls, add, update, rm");
      assertStringIncludes(ok(await tctl(["version"])), "Keybound tctl v");
      assertStringIncludes(ok(await tctl(["help"])), "Usage: tctl");
    });
  } finally {
    await auth.stop();
  }
});
