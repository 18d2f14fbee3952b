/**
 * `tctl create -f FILE` with several resources is one write (review-co M1):
 * a server refusal of any item leaves nothing written and names the
 * document and item; duplicates and over-limit files are refused before
 * anything is sent. Real tctl against the real app.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { MAX_PUT_RESOURCES } from "../../src/protocol/admin.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

const role = (name: string, spec: Record<string, unknown> = {}) => ({
  kind: "role",
  version: "v7",
  metadata: { name },
  spec,
});

Deno.test("create -f: a server refusal of item 3 of 5 writes nothing and names the item", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const roleNames = async () => {
    const r = await tctl(["get", "role", "--format", "json", ...conn]);
    assertEquals(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { metadata: { name: string } }[]).map((x) => x.metadata.name);
  };
  try {
    const before = await roleNames();
    // More than 256 logins: only the server checks this (at write).
    const logins = Array.from({ length: 300 }, (_, i) => `u${i}`);
    const list = [
      role("a1"),
      role("a2"),
      role("a3", { allow: { logins } }),
      role("a4"),
      role("a5"),
    ];
    for (const force of [[], ["-f"]]) {
      const r = await tctl(["create", ...force, "-", ...conn], { stdin: JSON.stringify(list) });
      assertEquals(r.code, 1, r.stderr);
      assertEquals(r.stdout, "");
      assertStringIncludes(r.stderr, "stdin: document 1, item 3: ");
      assertStringIncludes(r.stderr, "nothing was written");
      assertEquals(await roleNames(), before, "no role of the file was written");
    }

    // As YAML documents: the same, named by document.
    const yaml = list.map((x) => JSON.stringify(x)).join("\n---\n");
    const y = await tctl(["create", "-", ...conn], { stdin: yaml });
    assertEquals(y.code, 1, y.stderr);
    assertStringIncludes(y.stderr, "stdin: document 3: ");
    assertEquals(await roleNames(), before);

    // An existing resource in the middle (create without -f): nothing written.
    assertEquals(
      (await tctl(["create", "-", ...conn], { stdin: JSON.stringify(role("b2")) })).code,
      0,
    );
    const e = await tctl(["create", "-", ...conn], {
      stdin: JSON.stringify([role("b1"), role("b2"), role("b3")]),
    });
    assertEquals(e.code, 1, e.stderr);
    assertStringIncludes(e.stderr, "stdin: document 1, item 2: ");
    assertStringIncludes(e.stderr, "(use -f to overwrite); nothing was written");
    assertEquals((await roleNames()).filter((n) => n.startsWith("b")), ["b2"]);

    // The whole file goes through: created and updated lines per item.
    const ok = await tctl(["create", "-f", "-", ...conn], {
      stdin: JSON.stringify([role("b1"), role("b2"), role("b3")]),
    });
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(
      ok.stdout,
      'role "b1" has been created\nrole "b2" has been updated\nrole "b3" has been created\n',
    );
  } finally {
    await auth.stop();
  }
});

Deno.test("create -f: duplicates and files over the limits are refused before any write", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  try {
    for (const force of [[], ["-f"]]) {
      const r = await tctl(["create", ...force, "-", ...conn], {
        stdin: JSON.stringify([role("d0"), role("d1"), role("d1", { allow: { logins: ["x"] } })]),
      });
      assertEquals(r.code, 1, r.stderr);
      assertEquals(r.stdout, "");
      assertStringIncludes(
        r.stderr,
        'document 1, item 3: role "d1" already appears in document 1, item 2',
      );
    }
    const many = Array.from({ length: MAX_PUT_RESOURCES + 1 }, (_, i) => role(`m${i}`));
    const m = await tctl(["create", "-", ...conn], { stdin: JSON.stringify(many) });
    assertEquals(m.code, 2, m.stderr);
    assertStringIncludes(m.stderr, `more than the ${MAX_PUT_RESOURCES}`);
    // Each item within the per-field bounds, the whole over the 64 KiB body limit.
    const big = Array.from(
      { length: 8 },
      (_, i) => role(`big${i}`, { description: "x".repeat(9000) }),
    );
    const b = await tctl(["create", "-", ...conn], { stdin: JSON.stringify(big) });
    assert(b.code !== 0, b.stderr);
    assertStringIncludes(b.stderr, "65536-byte request limit");
    const r = await tctl(["get", "role", "--format", "json", ...conn]);
    const names = (JSON.parse(r.stdout) as { metadata: { name: string } }[]).map((x) =>
      x.metadata.name
    );
    assert(!names.some((n) => /^(d|m|big)\d/.test(n)), names.join(","));
  } finally {
    await auth.stop();
  }
});
