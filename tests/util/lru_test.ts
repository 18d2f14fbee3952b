import { LruMap } from "../../src/util/lru.ts";
import { assertEquals } from "../_assert.ts";

Deno.test("LruMap: bounded, evicts the least recently used, a hit refreshes", () => {
  const m = new LruMap<string, number>(2);
  m.set("a", 1);
  m.set("b", 2);
  assertEquals(m.get("a"), 1); // b is now the oldest
  m.set("c", 3);
  assertEquals([m.get("b"), m.get("a"), m.get("c"), m.size], [undefined, 1, 3, 2]);
  m.set("a", 10); // overwriting does not grow it
  assertEquals([m.get("a"), m.size], [10, 2]);
  assertEquals([m.delete("a"), m.delete("a"), m.size], [true, false, 1]);
  // A value that is itself undefined-like still counts as present.
  const z = new LruMap<string, number>(1);
  z.set("zero", 0);
  assertEquals(z.get("zero"), 0);
});

Deno.test("LruMap: peek reads without refreshing, so a peeked entry is still evicted first", () => {
  const m = new LruMap<string, number>(2);
  m.set("a", 1);
  m.set("b", 2);
  assertEquals([m.peek("a"), m.peek("x")], [1, undefined]);
  m.set("c", 3); // a stays the oldest despite the peek
  assertEquals([m.peek("a"), m.peek("b"), m.peek("c")], [undefined, 2, 3]);
});
