/**
 * `auth start --storage`: bad URLs, wrong passwords and an unreachable
 * database give one clear line and a non-zero exit before anything listens;
 * a good URL starts the service on PostgreSQL with `--data-dir` holding only
 * the instance's own files.
 *
 * @module
 */
import {
  AUTH_ENTRY,
  AUTH_V8_FLAGS,
  authStartCommand,
  spawnAuthService,
} from "../../runtime-adapters/deno/auth_process.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { PG_PASSWORD, postgresMissing, startPostgres } from "./_postgres.ts";
import { ignoreUnless } from "../_tools.ts";
import { type ProcessDir, processDir } from "./_watchdog.ts";

async function authStart(
  place: ProcessDir,
  dataDir: string,
  args: string[],
  env: Record<string, string> = {},
  command?: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [program, ...argv] = authStartCommand({ dataDir, args, ...(command ? { command } : {}) });
  const child = new Deno.Command(program, {
    args: argv,
    env: { PGPASSWORD: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).spawn();
  place.track(child.pid);
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "auth start --storage postgres://: refusals are one line, a good URL serves",
  ignore: ignoreUnless("PostgreSQL tests", postgresMissing),
  async fn(t) {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    const place = await processDir();
    const dir = place.dir;
    try {
      // A port nothing listens on, taken right before the step that uses it: the
      // machine is shared, and a port freed minutes earlier may be someone's by then.
      const closedPort = () => {
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (l.addr as Deno.NetAddr).port;
        l.close();
        return String(port);
      };
      const pwFile = `${dir}/pw`;
      await Deno.writeTextFile(pwFile, `${PG_PASSWORD}\n`, { mode: 0o600 });
      const cases: [string, string[], Record<string, string>, number, RegExp][] = [
        [
          "wrong password",
          ["--storage", pg.url("kb")],
          { PGPASSWORD: "not-it" },
          1,
          /^auth: error \[[A-Z_]+\]: storage: PostgreSQL at 127\.0\.0\.1:\d+\/kb refused user "keybound": password authentication failed/,
        ],
        [
          "unknown database",
          ["--storage", pg.url("missing")],
          { PGPASSWORD: PG_PASSWORD },
          1,
          /^auth: error \[[A-Z_]+\]: storage: database "missing" does not exist/,
        ],
        [
          "unreachable",
          ["--storage", "postgres://keybound@127.0.0.1:CLOSED_PORT/kb"],
          {
            PGPASSWORD: PG_PASSWORD,
          },
          1,
          /^auth: error \[BACKEND_UNAVAILABLE\]: storage: cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/kb: /,
        ],
        [
          "password in the URL",
          ["--storage", `postgres://keybound:${PG_PASSWORD}@127.0.0.1:1/kb`],
          {},
          2,
          /^auth: error \[[A-Z_]+\]: --storage: the URL must not contain a password/,
        ],
        [
          "bad sslmode",
          ["--storage", pg.url("kb").replace("disable", "sometimes")],
          {},
          2,
          /^auth: error \[[A-Z_]+\]: --storage: sslmode "sometimes" is not one of/,
        ],
        [
          "unknown scheme",
          ["--storage", "mysql://keybound@127.0.0.1/kb"],
          {},
          2,
          /^auth: error \[[A-Z_]+\]: --storage: unsupported URL scheme/,
        ],
        [
          "PGTARGETSESSIONATTRS set",
          ["--storage", pg.url("kb")],
          { PGPASSWORD: PG_PASSWORD, PGTARGETSESSIONATTRS: "read-write" },
          1,
          /^auth: error \[CONFIG_INVALID\]: PGTARGETSESSIONATTRS is set: /,
        ],
        [
          "no database",
          ["--storage", "postgres://keybound@127.0.0.1:5432"],
          {},
          2,
          /^auth: error \[[A-Z_]+\]: --storage: the URL must name one database/,
        ],
        [
          "missing password file",
          ["--storage", pg.url("kb"), "--storage-password-file", `${dir}/nope`],
          {},
          1,
          /^auth: error \[[A-Z_]+\]: --storage-password-file \S+\/nope: /,
        ],
      ];
      for (const [name, args, env, code, re] of cases) {
        await t.step(name, async () => {
          const data = `${dir}/${name.replaceAll(" ", "-")}`;
          const r = await authStart(
            place,
            data,
            args.map((a) => a.replace("CLOSED_PORT", closedPort())),
            env,
          );
          assertEquals(r.code, code, r.stderr);
          const lines = r.stderr.trim().split("\n").filter((l) => !l.includes("level=info"));
          assertEquals(lines.length, 1, r.stderr);
          assert(re.test(lines[0]), lines[0]);
          assert(!r.stderr.includes(PG_PASSWORD), "the password was printed");
          assert(!r.stdout.includes("listening"), "the service started anyway");
        });
      }

      await t.step("a good URL with --storage-password-file serves from PostgreSQL", async () => {
        const data = `${dir}/good`;
        const auth = await place.spawned(() =>
          spawnAuthService({
            dataDir: data,
            args: [
              "--cluster-name",
              "pg.example",
              "--storage",
              pg.url("kb"),
              "--storage-password-file",
              pwFile,
            ],
          })
        );
        try {
          // No Deno KV file: the state is in PostgreSQL ("front" holds the socket
          // of the server behind the TLS front).
          const files = [...Deno.readDirSync(data)].map((e) => e.name).sort();
          assertEquals(files, ["admin-identity", "auth-server", "front"]);
          const stored = await pg.psql("kb", "SELECT count(*) FROM keybound_kv");
          assert(Number(stored.trim()) >= 6, `cluster state not in PostgreSQL: ${stored}`);
        } finally {
          assertEquals(await auth.stop(), 0);
        }
      });
    } finally {
      await place[Symbol.asyncDispose]();
    }
  },
});

/**
 * `auth start` under a narrowed --allow-env, stdin not a terminal:
 * `--no-prompt` turns what would prompt a terminal into an error, so a
 * refusal here is one a daemon on a terminal would have waited on.
 */
function narrowedEnv(variables: string): string[] {
  return [
    Deno.execPath(),
    "run",
    "--unstable-kv",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--allow-sys",
    `--allow-env=${variables}`,
    "--no-prompt",
    AUTH_V8_FLAGS,
    AUTH_ENTRY,
  ];
}

Deno.test("auth start --storage postgres:// outside a narrowed --allow-env's PGPASSWORD: one clear line", async () => {
  const place = await processDir();
  const dir = place.dir;
  try {
    // Nothing listens on port 1: the refusal comes before any connection.
    const r = await authStart(
      place,
      `${dir}/data`,
      ["--storage", "postgres://keybound@127.0.0.1:1/kb"],
      { PGPASSWORD: PG_PASSWORD },
      narrowedEnv("NO_COLOR"),
    );
    assertEquals(r.code, 1, r.stderr);
    const refusal = (why: string, remedy: string) =>
      `auth: error [CONFIG_INVALID]: auth may not read PGPASSWORD: ${why}, and it decides ` +
      `the password of the PostgreSQL login (--storage postgres://…): ${remedy} or use ` +
      "--storage-password-file\n";
    assertEquals(
      r.stderr,
      refusal(
        "its --allow-env does not name it",
        "allow PGPASSWORD (--allow-env=PGPASSWORD,…; it may stay unset)",
      ),
    );
    assertEquals(r.stdout, "");
    // Denied: a deliberate choice, so the login goes without a password (trust, peer or
    // certificate authentication) and start-up gets as far as connecting, without a prompt.
    const denied = await authStart(
      place,
      `${dir}/data`,
      ["--storage", "postgres://keybound@127.0.0.1:1/kb"],
      { PGPASSWORD: PG_PASSWORD },
      // Named by both: the deny wins.
      narrowedEnv("NO_COLOR,PGPASSWORD")
        .flatMap((f) => f === "--no-prompt" ? [f, "--deny-env=PGPASSWORD"] : [f]),
    );
    assertEquals(denied.code, 1, denied.stderr);
    assertMatch(
      denied.stderr,
      /^auth: error \[BACKEND_UNAVAILABLE\]: storage: cannot reach PostgreSQL at 127\.0\.0\.1:1\/kb: /,
    );
  } finally {
    await place[Symbol.asyncDispose]();
  }
});

Deno.test({
  name: "auth start --storage postgres:// serves under a narrowed --allow-env, never prompting",
  ignore: ignoreUnless("PostgreSQL tests", postgresMissing),
  async fn(t) {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    const place = await processDir();
    const dir = place.dir;
    try {
      const pwFile = `${dir}/pw`;
      await Deno.writeTextFile(pwFile, `${PG_PASSWORD}\n`, { mode: 0o600 });
      // postgres.js reads PG* variables of its own (PGAPPNAME, PGSSLNEGOTIATION…):
      // outside the narrowed --allow-env they are absent, not a prompt.
      const cases: [string, string, string[]][] = [
        ["PGPASSWORD named", "PGPASSWORD", []],
        ["a password file, PGPASSWORD not named", "NO_COLOR", ["--storage-password-file", pwFile]],
      ];
      for (const [name, variables, args] of cases) {
        await t.step(name, async () => {
          const auth = await place.spawned(() =>
            spawnAuthService({
              dataDir: `${dir}/${name.replaceAll(" ", "-")}`,
              command: narrowedEnv(variables),
              args: ["--cluster-name", "pg.example", "--storage", pg.url("kb"), ...args],
              env: { PGPASSWORD: PG_PASSWORD },
              captureLog: true,
            })
          );
          assertEquals(await auth.stop(), 0);
        });
      }
      const stored = await pg.psql("kb", "SELECT count(*) FROM keybound_kv");
      assert(Number(stored.trim()) >= 6, `cluster state not in PostgreSQL: ${stored}`);
    } finally {
      await place[Symbol.asyncDispose]();
    }
  },
});
