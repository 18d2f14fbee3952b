/**
 * `tctl get` as YAML or JSON prints no control, bidi or other unsafe
 * character raw, in keys or values, from the server or written by an admin
 * (review-co S1), and what it prints still reads back as the same values.
 * Real tctl against the real app; a wrapper plays a server that adds such
 * characters to fields tctl does not know.
 */
import type { FetchApp } from "../../runtime-adapters/deno/serve.ts";
import { assert, assertEquals } from "../_assert.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

const EVIL = "\u001b[2K\u001b]0;pwned\u0007\u009b31m\u202eDEL\u007f\r\u2066x\u2069\u0085";
// DEL, C1, the line/paragraph separators and the bidi overrides and isolates.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function evilize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(evilize);
  if (v === null || typeof v !== "object") return v;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) o[k] = evilize(x);
  if ("kind" in o) {
    o["x_" + EVIL] = EVIL;
    o["nested_extra"] = { a: [EVIL, { b: EVIL }] };
  }
  return o;
}

const evilServer = (app: FetchApp): FetchApp => ({
  async fetch(req, env) {
    const res = await app.fetch(req, env);
    if (!res.ok || req.method !== "GET" || !new URL(req.url).pathname.startsWith("/v1/resources")) {
      return res;
    }
    const body = evilize(await res.json());
    return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
  },
});

Deno.test("tctl get yaml/json escapes unsafe characters a server adds", async () => {
  const auth = await startInProcessAuth({ around: evilServer });
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  try {
    assertEquals((await tctl(["bots", "add", "web", ...conn])).code, 0);
    for (const args of [["get", "token/web"], ["get", "token"], ["get", "bot/web"]]) {
      for (const format of ["yaml", "json"]) {
        const r = await tctl([...args, "--format", format, ...conn]);
        assertEquals(r.code, 0, r.stderr);
        assert(!RAW.test(r.stdout), `raw unsafe character in ${args} ${format}:\n${r.stdout}`);
        const printed = format === "json" ? JSON.parse(r.stdout)[0] : null;
        if (printed) {
          assertEquals(printed["x_" + EVIL], EVIL);
          assertEquals(printed.nested_extra, { a: [EVIL, { b: EVIL }] });
        }
      }
    }
  } finally {
    await auth.stop();
  }
});

Deno.test("tctl get yaml/json output of unsafe descriptions and labels writes back equal", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const metadata = { name: "r", description: `a${EVIL}b`, labels: { [`k${EVIL}`]: `v${EVIL}` } };
  const read = async () => {
    const r = await tctl(["get", "role/r", "--format", "json", ...conn]);
    assertEquals(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout)[0].metadata;
    return { name: m.name, description: m.description, labels: m.labels };
  };
  try {
    const c = await tctl(["create", "-", ...conn], {
      stdin: JSON.stringify({ kind: "role", version: "v7", metadata, spec: {} }),
    });
    assertEquals(c.code, 0, c.stderr);
    assertEquals(await read(), metadata);
    for (const format of ["yaml", "json"]) {
      const g = await tctl(["get", "role/r", "--format", format, ...conn]);
      assertEquals(g.code, 0, g.stderr);
      assert(!RAW.test(g.stdout), `raw unsafe character in ${format}:\n${g.stdout}`);
      const w = await tctl(["create", "-f", "-", ...conn], { stdin: g.stdout });
      assertEquals(w.code, 0, w.stderr);
      assertEquals(await read(), metadata, `${format} output read back`);
    }
  } finally {
    await auth.stop();
  }
});
