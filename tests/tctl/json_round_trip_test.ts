/**
 * `tctl get --format json` prints what `tctl create -f` writes back, as YAML
 * does (review-ca N6): a JSON array, of one resource or many, with every
 * item checked before the first write, a bad item named by document, item,
 * field and line, a field from a newer server refused by name, and broken
 * JSON called JSON, with its line and column.
 *
 * @module
 */
import { assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { FUTURE, newerServer } from "../protocol/_newer_server.ts";
import { type RunResult, startInProcessAuth, tctl } from "./_harness.ts";

function ok(r: RunResult): string {
  assertEquals(r.code, 0, r.stderr);
  return r.stdout;
}

Deno.test("tctl create -f writes back what tctl get --format json printed, one or many", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const dir = await Deno.makeTempDir();
  const limits = async () => {
    const tokens = JSON.parse(ok(await tctl(["get", "token", "--format", "json", ...conn])));
    return Object.fromEntries(
      tokens.map((
        t: { metadata: { name: string }; spec: { bound_keypair: { recovery: { limit: number } } } },
      ) => [t.metadata.name, t.spec.bound_keypair.recovery.limit]),
    );
  };
  try {
    ok(await tctl(["bots", "add", "web", ...conn]));
    ok(await tctl(["bots", "add", "api", ...conn]));
    assertEquals(await limits(), { api: 1, web: 1 });

    // One resource: still an array.
    const one = `${dir}/web.json`;
    const printed = ok(await tctl(["get", "token/web", "--format", "json", ...conn]));
    await Deno.writeTextFile(one, printed.replace(/"limit": 1\b/, '"limit": 5'));
    assertEquals(
      ok(await tctl(["create", "-f", one, ...conn])),
      'token "web" has been updated\n',
    );
    assertEquals(await limits(), { api: 1, web: 5 });

    // Many: the listing, edited, written back in one run (through stdin too).
    const all = ok(await tctl(["get", "token", "--format", "json", ...conn]));
    const edited = all.replaceAll(/"limit": \d+/g, '"limit": 7');
    assertEquals(
      ok(await tctl(["create", "-f", "-", ...conn], { stdin: edited })),
      'token "api" has been updated\ntoken "web" has been updated\n',
    );
    assertEquals(await limits(), { api: 7, web: 7 });

    // A bad item: one line naming the document, the item, the field and the
    // line; nothing written, the good item before it included.
    const bad = `${dir}/bad.json`;
    const items = JSON.parse(all);
    items[0].spec.bound_keypair.recovery.limit = 3;
    items[1].spec.bound_keypair.recovery.limit = "three";
    const text = JSON.stringify(items, null, 4);
    await Deno.writeTextFile(bad, text);
    const refused = await tctl(["create", "-f", bad, ...conn]);
    assertEquals(refused.code, 1, refused.stdout);
    assertEquals(refused.stdout, "");
    const line = text.split("\n").findIndex((l) => l.includes('"three"')) + 1;
    assertEquals(
      refused.stderr.trim(),
      `tctl: error [BAD_PARAMETER]: ${bad}: document 1, item 2: spec.bound_keypair.recovery.limit: expected number, received string (line ${line})`,
    );
    assertEquals(await limits(), { api: 7, web: 7 });

    // Broken JSON (the edit dropped a comma): called JSON, not YAML, with line and column.
    const broken = `${dir}/broken.json`;
    const lines = all.split("\n");
    const at = lines.findIndex((l) => l.includes('"limit"'));
    lines[at] = lines[at].replace(/,$/, "");
    await Deno.writeTextFile(broken, lines.join("\n"));
    const syntax = await tctl(["create", "-f", broken, ...conn]);
    assertEquals(syntax.code, 1, syntax.stdout);
    assertMatch(
      syntax.stderr.trim(),
      new RegExp(
        `^tctl: error \\[BAD_PARAMETER\\]: ${broken}: document 1: invalid JSON at line ` +
          `${at + 1}, column \\d+: `,
      ),
    );
    assertEquals(await limits(), { api: 7, web: 7 });
  } finally {
    await Deno.remove(dir, { recursive: true });
    await auth.stop();
  }
});

Deno.test("tctl create -f of a newer server's JSON refuses its unknown field by name, as for YAML", async () => {
  let newer: ReturnType<typeof newerServer> | undefined;
  const auth = await startInProcessAuth({
    around: (app) => newer = newerServer(app, (path) => path.startsWith("/v1/resources")),
  });
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const dir = await Deno.makeTempDir();
  try {
    ok(await tctl(["bots", "add", "web", ...conn]));
    const file = `${dir}/token.json`;
    const printed = ok(await tctl(["get", "token/web", "--format", "json", ...conn]));
    assertStringIncludes(printed, `"${FUTURE}"`);
    await Deno.writeTextFile(file, printed.replace(/"limit": 1\b/, '"limit": 5'));
    const before = newer!.changed;
    const written = await tctl(["create", "-f", file, ...conn]);
    assertEquals(written.code, 1, written.stdout);
    assertEquals(written.stdout, "");
    assertStringIncludes(
      written.stderr,
      `${file}: document 1, item 1: metadata.${FUTURE}: unknown field "${FUTURE}" (line `,
    );
    assertEquals(newer!.changed, before, "nothing sent");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await auth.stop();
  }
});
