/**
 * The conformance checks every server {@linkcode Backend} must pass: ordering
 * and prefix isolation of `list`, compare-and-swap `commit` (absent checks,
 * stale versions, all-or-nothing across keys), delete, expiry, and exactly one
 * winner among concurrent writers of the same version.
 *
 * Pure web-standard code: the same module runs under `deno test` and, bundled,
 * inside workerd against real Durable Object storage.
 *
 * @module
 */
import type { Backend, Entry, JsonValue } from "../../src/storage/backend.ts";
import { assert, assertJsonEquals } from "../_assert_core.ts";
import { type CaseResult, type NamedCase, runCases } from "./_results.ts";

/** Makes a fresh, empty backend for one check. */
export type BackendFactory = () => Promise<Backend>;

/** What a backend implementation guarantees beyond the common core. */
export interface BackendCapabilities {
  /** Entries whose `expiresAt` has passed read as absent at once (not just eventually). */
  exactExpiry: boolean;
}

/** One named conformance check, run against an empty backend. */
export type BackendCase = NamedCase<BackendCapabilities, Backend>;

const keys = (entries: Entry[]) => entries.map((e) => e.key);
const values = (entries: Entry[]) => entries.map((e) => e.value);

async function put(b: Backend, key: string[], value: JsonValue): Promise<void> {
  const r = await b.commit({ checks: [], mutations: [{ type: "set", key, value }] });
  assert(r.ok, `unconditional set of ${JSON.stringify(key)} failed`);
}

/** Every conformance check, in a stable order. */
export const BACKEND_CASES: readonly BackendCase[] = [
  {
    name: "get of an absent key is null; a set value reads back with a string version",
    async run(b) {
      assertJsonEquals(await b.get(["missing"]), null);
      await put(b, ["bots", "alpha"], { n: 1, tags: ["x", "y"], nested: { ok: true }, none: null });
      const e = await b.get(["bots", "alpha"]);
      assert(e !== null, "entry missing after set");
      assertJsonEquals(e.key, ["bots", "alpha"]);
      assertJsonEquals(e.value, { n: 1, tags: ["x", "y"], nested: { ok: true }, none: null });
      assert(typeof e.version === "string" && e.version.length > 0, "version is not a string");
    },
  },
  {
    name: "list returns entries in key order and honours limit and reverse",
    async run(b) {
      for (const k of [["a", "c"], ["a", "a"], ["a", "b", "x"], ["a", "b"], ["a", "ä"]]) {
        await put(b, k, k.join("/"));
      }
      const order = [["a", "a"], ["a", "b"], ["a", "b", "x"], ["a", "c"], ["a", "ä"]];
      assertJsonEquals(keys(await b.list(["a"])), order);
      assertJsonEquals(keys(await b.list(["a"], { limit: 2 })), order.slice(0, 2));
      assertJsonEquals(keys(await b.list(["a"], { reverse: true })), [...order].reverse());
      assertJsonEquals(keys(await b.list(["a"], { reverse: true, limit: 1 })), [["a", "ä"]]);
      assertJsonEquals(values(await b.list(["a", "b"])), ["a/b/x"]);
    },
  },
  {
    name: "list after a cursor continues strictly past it, both directions, pages join up",
    async run(b) {
      const order = [["p", "a"], ["p", "b"], ["p", "b", "x"], ["p", "b", "y"], ["p", "c"], [
        "p",
        "ä",
      ]];
      for (const k of [...order].reverse()) await put(b, k, k.join("/"));
      await put(b, ["q", "a"], "other prefix");
      assertJsonEquals(keys(await b.list(["p"], { after: ["p", "b"] })), order.slice(2));
      assertJsonEquals(keys(await b.list(["p"], { after: ["p", "b"], reverse: true })), [[
        "p",
        "a",
      ]]);
      assertJsonEquals(keys(await b.list(["p"], { after: ["p", "b", "x"], limit: 2 })), [
        ["p", "b", "y"],
        ["p", "c"],
      ]);
      // A cursor that names no entry still orders correctly.
      assertJsonEquals(keys(await b.list(["p"], { after: ["p", "bb"] })), order.slice(4));
      assertJsonEquals(keys(await b.list(["p"], { after: ["p", "bb"], reverse: true })), [
        ["p", "b", "y"],
        ["p", "b", "x"],
        ["p", "b"],
        ["p", "a"],
      ]);
      assertJsonEquals(await b.list(["p"], { after: ["p", "ä"] }), []);
      assertJsonEquals(await b.list(["p"], { after: ["p", "a"], reverse: true }), []);
      assertJsonEquals(keys(await b.list([], { after: ["p", "ä"] })), [["q", "a"]]);
      for (const reverse of [false, true]) {
        const seen: Entry[] = [];
        let after: string[] | undefined;
        for (let page = 0; page < 10; page++) {
          const got = await b.list(["p"], { limit: 4, reverse, after });
          seen.push(...got);
          if (got.length < 4) break;
          after = [...got[got.length - 1].key];
        }
        assertJsonEquals(keys(seen), reverse ? [...order].reverse() : order);
      }
    },
  },
  {
    name: "list refuses a cursor outside the listed prefix",
    async run(b) {
      await put(b, ["p", "a"], 1);
      for (const after of [["q", "a"], ["p"], []]) {
        let threw = false;
        try {
          await b.list(["p"], { after });
        } catch (err) {
          threw = err instanceof TypeError;
        }
        assert(threw, `cursor ${JSON.stringify(after)} was not refused with a TypeError`);
      }
    },
  },
  {
    name: "list isolates prefixes and excludes the prefix key itself",
    async run(b) {
      await put(b, ["tok"], "exact");
      await put(b, ["tok", "1"], "child");
      await put(b, ["token", "1"], "longer-part");
      await put(b, ["to", "k"], "split-part");
      await put(b, ["tok.", "1"], "dotted");
      assertJsonEquals(values(await b.list(["tok"])), ["child"]);
      assertJsonEquals(values(await b.list(["tok."])), ["dotted"]);
      assertJsonEquals(await b.list(["nothing"]), []);
      assertJsonEquals((await b.list([])).length, 5);
    },
  },
  {
    name: "an absent check creates once and refuses when the key exists",
    async run(b) {
      const create = (value: string) =>
        b.commit({
          checks: [{ key: ["once"], version: null }],
          mutations: [{ type: "set", key: ["once"], value }],
        });
      assert((await create("first")).ok, "first create-if-absent refused");
      assertJsonEquals(await create("second"), { ok: false });
      assertJsonEquals((await b.get(["once"]))?.value, "first");
    },
  },
  {
    name: "a stale version is rejected and the current one accepted",
    async run(b) {
      await put(b, ["k"], 1);
      const v1 = (await b.get(["k"]))!.version;
      await put(b, ["k"], 2);
      const v2 = (await b.get(["k"]))!.version;
      assert(v1 !== v2, "version did not change on write");
      const stale = await b.commit({
        checks: [{ key: ["k"], version: v1 }],
        mutations: [{ type: "set", key: ["k"], value: 3 }],
      });
      assertJsonEquals(stale, { ok: false });
      assertJsonEquals((await b.get(["k"]))?.value, 2);
      const fresh = await b.commit({
        checks: [{ key: ["k"], version: v2 }],
        mutations: [{ type: "set", key: ["k"], value: 4 }],
      });
      assert(fresh.ok, "commit at the current version refused");
      assertJsonEquals((await b.get(["k"]))?.value, 4);
    },
  },
  {
    name: "a commit over several keys applies all mutations or none",
    async run(b) {
      await put(b, ["acct", "a"], 10);
      await put(b, ["acct", "b"], 20);
      const va = (await b.get(["acct", "a"]))!.version;
      const vb = (await b.get(["acct", "b"]))!.version;
      await put(b, ["acct", "b"], 21);
      const transfer = (checkB: string) =>
        b.commit({
          checks: [{ key: ["acct", "a"], version: va }, { key: ["acct", "b"], version: checkB }],
          mutations: [
            { type: "set", key: ["acct", "a"], value: 0 },
            { type: "set", key: ["acct", "b"], value: 30 },
            { type: "set", key: ["acct", "log"], value: "moved" },
            { type: "delete", key: ["acct", "missing"] },
          ],
        });
      assertJsonEquals(await transfer(vb), { ok: false });
      assertJsonEquals(values(await b.list(["acct"])), [10, 21]);
      const vb2 = (await b.get(["acct", "b"]))!.version;
      assert((await transfer(vb2)).ok, "commit with all checks holding refused");
      assertJsonEquals(values(await b.list(["acct"])), [0, 30, "moved"]);
    },
  },
  {
    name: "delete removes an entry, and an absent check holds afterwards",
    async run(b) {
      await put(b, ["d", "1"], "x");
      await put(b, ["d", "2"], "y");
      const v = (await b.get(["d", "1"]))!.version;
      const r = await b.commit({
        checks: [{ key: ["d", "1"], version: v }],
        mutations: [{ type: "delete", key: ["d", "1"] }],
      });
      assert(r.ok, "versioned delete refused");
      assertJsonEquals(await b.get(["d", "1"]), null);
      assertJsonEquals(keys(await b.list(["d"])), [["d", "2"]]);
      const recreate = await b.commit({
        checks: [{ key: ["d", "1"], version: null }],
        mutations: [{ type: "set", key: ["d", "1"], value: "again" }],
      });
      assert(recreate.ok, "absent check failed after delete");
    },
  },
  {
    name: "an entry with a future expiresAt is readable",
    async run(b) {
      const r = await b.commit({
        checks: [],
        mutations: [{
          type: "set",
          key: ["exp", "later"],
          value: 1,
          expiresAt: Date.now() + 3600_000,
        }],
      });
      assert(r.ok, "set with expiresAt refused");
      assertJsonEquals((await b.get(["exp", "later"]))?.value, 1);
      assertJsonEquals(values(await b.list(["exp"])), [1]);
    },
  },
  {
    name: "an entry whose expiresAt has passed reads as absent, also to checks",
    requires: "exactExpiry",
    async run(b) {
      await b.commit({
        checks: [],
        mutations: [
          { type: "set", key: ["exp", "gone"], value: 1, expiresAt: Date.now() - 1000 },
          { type: "set", key: ["exp", "kept"], value: 2 },
        ],
      });
      assertJsonEquals(await b.get(["exp", "gone"]), null);
      assertJsonEquals(values(await b.list(["exp"])), [2]);
      const r = await b.commit({
        checks: [{ key: ["exp", "gone"], version: null }],
        mutations: [{ type: "set", key: ["exp", "gone"], value: 3 }],
      });
      assert(r.ok, "absent check failed on an expired entry");
      assertJsonEquals((await b.get(["exp", "gone"]))?.value, 3);
    },
  },
  {
    name: "25 point reads at once each get their own entry; absent and expired ones null",
    async run(b) {
      for (let i = 0; i < 20; i++) await put(b, ["many", String(i)], i);
      const r = await b.commit({
        checks: [],
        mutations: [{ type: "set", key: ["many", "gone"], value: 1, expiresAt: Date.now() - 1 }],
      });
      assert(r.ok, "set of an expired entry failed");
      const asked = [
        ...Array.from({ length: 20 }, (_, i) => String(i)),
        "absent-1",
        "gone",
        "absent-2",
        "3",
        "absent-3",
      ];
      const got = await Promise.all(asked.map((k) => b.get<number>(["many", k])));
      assertJsonEquals(
        got.map((e) => e?.value ?? null),
        [...Array.from({ length: 20 }, (_, i) => i), null, null, null, 3, null],
      );
      assertJsonEquals(got[7]?.key, ["many", "7"]);
    },
  },
  {
    name: "20 concurrent compare-and-swap writers: exactly one wins per version",
    async run(b) {
      await put(b, ["counter"], 0);
      for (let round = 1; round <= 3; round++) {
        const before = (await b.get<number>(["counter"]))!;
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, writer) =>
            b.commit({
              checks: [{ key: ["counter"], version: before.version }],
              mutations: [
                { type: "set", key: ["counter"], value: before.value + 1 },
                { type: "set", key: ["winner", String(round)], value: writer },
              ],
            })),
        );
        const winners = results.filter((r) => r.ok).length;
        assertJsonEquals(winners, 1, `winners in round ${round}`);
        assertJsonEquals((await b.get(["counter"]))?.value, round);
      }
      assertJsonEquals((await b.list(["winner"])).length, 3);
    },
  },
];

/**
 * Runs every check against fresh backends from `factory`, skipping checks
 * whose capability `capabilities` lacks; never throws.
 */
export function runBackendConformance(
  factory: BackendFactory,
  capabilities: BackendCapabilities,
): Promise<CaseResult[]> {
  return runCases(BACKEND_CASES, capabilities, factory, (b) => b.close());
}
