/**
 * Listing commands read one page per request: `tctl bots ls`, `bots
 * instances ls [BOT] [--search]`, `tokens ls` and `locks ls` print `--limit`
 * rows and the cursor of the next page, and the server reads the rows of the
 * page plus one, however many are stored (counted at the backend).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { resourceKey } from "../../src/server/keys.ts";
import type { Mutation } from "../../src/storage/backend.ts";
import { CountingBackend } from "../storage/_counting_backend.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";
import { nextPageHint } from "../../src/cli/tctl/paging.ts";

const BOTS = 25;

function instance(bot: string, id: string, host: string) {
  const auth = {
    authenticated_at: "2026-11-23T08:00:00.000Z",
    join_method: "bound_keypair",
    join_token: bot,
    generation: 1,
    public_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
  };
  return {
    kind: "bot_instance",
    version: "v1",
    metadata: { name: `${bot}/${id}` },
    spec: { bot_name: bot, instance_id: id },
    status: {
      initial_authentication: auth,
      latest_authentications: [auth],
      latest_heartbeats: [{
        recorded_at: "2026-11-23T09:30:00.000Z",
        is_startup: false,
        version: "0.1.0",
        hostname: host,
        uptime: "1h",
        join_method: "bound_keypair",
        one_shot: false,
        architecture: "amd64",
        os: "linux",
      }],
    },
  };
}

/** The names in the first column of a table (below its header and rule). */
function firstColumn(stdout: string): string[] {
  return stdout.split("\n\n")[0].split("\n").slice(2).filter((l) => l.trim() !== "")
    .map((l) => l.split(/\s+/)[0]);
}

function cursorOf(stdout: string): string | undefined {
  return /--after (\S+)/.exec(stdout)?.[1];
}

Deno.test("tctl listings page with --limit/--after and read one page per request", async () => {
  let counting: CountingBackend | undefined;
  const auth = await startInProcessAuth({ wrap: (b) => (counting = new CountingBackend(b)) });
  const backend = counting!;
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const instancesLs = (...args: string[]) => tctl(["bots", "instances", "ls", ...args, ...conn]);
  try {
    const mutations: Mutation[] = [];
    for (let i = 0; i < BOTS; i++) {
      const name = `bot-${String(i).padStart(2, "0")}`;
      mutations.push({
        type: "set",
        key: resourceKey("bot", name),
        value: { kind: "bot", version: "v1", metadata: { name }, spec: { roles: [], traits: [] } },
      });
      // Instances of two bots: "a" (every third on host "needle") and "b".
      const bot = i % 2 === 0 ? "a" : "b";
      const id = `00000000-0000-4000-8000-0000000000${String(i).padStart(2, "0")}`;
      mutations.push({
        type: "set",
        key: resourceKey("bot_instance", bot, id),
        value: instance(bot, id, i % 3 === 0 ? "needle" : "hay"),
      });
    }
    assert((await backend.commit({ checks: [], mutations })).ok);

    // Bots: three pages of 10, 10 and 5.
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 3; page++) {
      const rowsBefore = backend.rowsRead;
      const args = ["bots", "ls", "--limit", "10", ...(after ? ["--after", after] : []), ...conn];
      const r = await tctl(args);
      assertEquals(r.code, 0, r.stderr);
      // The page, one more row, and at most the lock marker of the admin check.
      assert(backend.rowsRead - rowsBefore <= 12, `page ${page} read too many rows`);
      seen.push(...firstColumn(r.stdout));
      after = cursorOf(r.stdout);
      if (page < 2) assertStringIncludes(r.stdout, "More: tctl bots ls --after ");
      else assertEquals(after, undefined, "the last page has no cursor");
    }
    assertEquals(seen, Array.from({ length: BOTS }, (_, i) => `bot-${String(i).padStart(2, "0")}`));

    // One bot's instances, two at a time.
    const a = await instancesLs("a", "--limit", "2");
    assertEquals(a.code, 0, a.stderr);
    assertEquals(firstColumn(a.stdout).every((n) => n.startsWith("a/")), true);
    assertEquals(firstColumn(a.stdout).length, 2);
    assertStringIncludes(a.stdout, "More: tctl bots instances ls a --after a/");
    const a2 = await instancesLs("a", "--limit", "1000", "--after", cursorOf(a.stdout)!);
    assertEquals(firstColumn(a2.stdout).length, 13 - 2);

    // --search reads on until --limit rows match; its cursor resumes after the last shown.
    const s1 = await instancesLs("--search", "NEEDLE", "--limit", "5");
    assertEquals(s1.code, 0, s1.stderr);
    assertEquals(firstColumn(s1.stdout).length, 5);
    const s2 = await instancesLs("--search", "needle", "--after", cursorOf(s1.stdout)!);
    assertEquals(firstColumn(s2.stdout).length, 9 - 5);
    assertEquals(cursorOf(s2.stdout), undefined);

    // Bad page flags are one-line errors naming the flag.
    const zero = await tctl(["tokens", "ls", "--limit", "0", ...conn]);
    assertEquals(zero.code, 2);
    assertStringIncludes(zero.stderr, "--limit");
    const foreign = await instancesLs("b", "--after", "a/x");
    assertEquals(foreign.code !== 0, true);
    assertStringIncludes(foreign.stderr, "after");
    const locks = await tctl(["locks", "ls", "--limit", "1", ...conn]);
    assertEquals(locks.code, 0, locks.stderr);
  } finally {
    await auth.stop();
  }
});

Deno.test("the next-page hint escapes the command it echoes (a --search text from argv)", () => {
  const hint = nextPageHint(`tctl bots instances ls --search "a\u001b[2Jb\u202e"`, "bot/x\n");
  for (const raw of ["\u001b", "\u202e", "\n"]) {
    assert(!hint.trim().includes(raw), JSON.stringify(hint));
  }
  assertStringIncludes(hint, "--after bot/x");
});
