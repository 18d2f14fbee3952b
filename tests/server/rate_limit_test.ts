/**
 * Issue #8 item 3: per-source token buckets in front of every
 * unauthenticated route. A flood of `begin`s from one address is answered
 * `429 RATE_LIMITED` with `Retry-After` before anything is parsed or stored;
 * other sources are unaffected; the bucket map stays within its bound.
 *
 * @module
 */
import { JOIN_BEGIN_PATH } from "../../src/protocol/messages.ts";
import { WEB_ENROLL_PATH } from "../../src/protocol/web.ts";
import { listAudit } from "../../src/server/audit.ts";
import { createApp } from "../../src/server/mod.ts";
import { sourceAddress } from "../../src/server/rate_limit/source.ts";
import { TokenBuckets } from "../../src/server/rate_limit/token_bucket.ts";
import { assert, assertEquals } from "../_assert.ts";
import { startInProcessAuth } from "../tctl/_harness.ts";

Deno.test("token buckets: burst, refill, Retry-After, bounded map", () => {
  const b = new TokenBuckets({ perSecond: 2, burst: 3, maxSources: 100 });
  for (let i = 0; i < 3; i++) assert(b.take("a", 0).ok);
  assertEquals(b.take("a", 0), { ok: false, retryAfterSeconds: 1 });
  assert(b.take("a", 500).ok, "half a second refills one token at 2/s");
  assert(!b.take("a", 500).ok);
  assert(b.take("b", 500).ok, "another source has its own bucket");
  for (let i = 0; i < 10_000; i++) b.take(`flood-${i}`, 1000);
  assertEquals(b.size, 100, "the map is bounded");
  const slow = new TokenBuckets({ perSecond: 0.1, burst: 1 });
  slow.take("x", 0);
  assertEquals(slow.take("x", 0), { ok: false, retryAfterSeconds: 10 });
});

Deno.test("token buckets: the least recently used source is the one evicted", () => {
  const b = new TokenBuckets({ perSecond: 0.001, burst: 1, maxSources: 2 });
  assert(b.take("a", 0).ok);
  assert(b.take("b", 0).ok);
  assert(!b.take("a", 0).ok, "a is empty and now the most recently used");
  assert(b.peek("b", 0).ok === false, "peeking does not refresh b");
  assert(b.take("c", 0).ok); // evicts b, the least recently used
  assert(b.take("b", 0).ok, "b was evicted: it starts again with a full bucket");
  assert(!b.take("c", 0).ok, "c was kept");
});

Deno.test("source address: port dropped, IPv6 by /64, mapped IPv4 unwrapped", () => {
  assertEquals(sourceAddress("203.0.113.7:51234"), "203.0.113.7");
  assertEquals(sourceAddress("203.0.113.7"), "203.0.113.7");
  assertEquals(sourceAddress("[2001:db8:1:2:3:4:5:6]:443"), "2001:db8:1:2::/64");
  assertEquals(sourceAddress("2001:db8:1:2::9"), "2001:db8:1:2::/64");
  assertEquals(sourceAddress("[::1]:80"), "0:0:0:0::/64");
  assertEquals(sourceAddress("[::ffff:192.0.2.1]:80"), "192.0.2.1");
  assertEquals(sourceAddress(undefined), "unknown");
});

Deno.test("a begin flood from one address gets 429 RATE_LIMITED with Retry-After, unstored", async () => {
  const auth = await startInProcessAuth({ app: { rateLimit: { perSecond: 0.5, burst: 5 } } });
  try {
    const begin = () =>
      fetch(auth.url + JOIN_BEGIN_PATH, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token_name: "nope", public_tls_key: "x", public_ssh_key: "y" }),
      });
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 50; i++) {
      const res = await begin();
      statuses.push(res.status);
      if (res.status === 429 && !limited) limited = res;
      else await res.body?.cancel();
    }
    assertEquals(statuses.filter((s) => s === 400).length, 5, "the burst gets through");
    assertEquals(statuses.filter((s) => s === 429).length, 45);
    assert(limited);
    const retryAfter = Number(limited.headers.get("retry-after"));
    assert(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`);
    const body = await limited.json();
    assertEquals(body.error.code, "RATE_LIMITED");
    const failed = (await listAudit(auth.ctx, { type: "join.failed" })).items;
    assertEquals(failed.reduce((n, e) => n + (e.count as number), 0), 5, "429s store nothing");

    // Every other unauthenticated route shares the budget.
    const ping = await fetch(auth.url + "/v1/ping");
    await ping.body?.cancel();
    assertEquals(ping.status, 429);

    // The source comes from the adapter: another address has its own bucket.
    const app = createApp(auth.ctx, { rateLimit: { perSecond: 0.5, burst: 1 } });
    const ping2 = async (addr: string) =>
      (await app.fetch(new Request("http://x/v1/ping"), { remoteAddr: addr })).status;
    assertEquals(await ping2("198.51.100.1:1000"), 200);
    assertEquals(await ping2("198.51.100.1:1001"), 429, "a new port is the same source");
    assertEquals(await ping2("198.51.100.2:1000"), 200);
  } finally {
    await auth.stop();
  }
});

Deno.test("a junk Authorization header buys nothing: enrollment, console pages and a malformed join are charged", async () => {
  const auth = await startInProcessAuth();
  try {
    const app = createApp(auth.ctx, { rateLimit: { perSecond: 0.001, burst: 3 } });
    const statuses = async (path: string, init: RequestInit, addr: string) => {
      const out: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await app.fetch(new Request(`http://x${path}`, init), { remoteAddr: addr });
        await r.body?.cancel();
        out.push(r.status);
      }
      return out;
    };
    const junk = { authorization: "Keybound junk", "content-type": "application/json" };
    const post = (body: string) => ({ method: "POST", headers: junk, body });
    for (
      const [name, path, init] of [
        ["enroll", WEB_ENROLL_PATH, post("{}")],
        ["console page", "/web/index.html", { headers: junk }],
        ["malformed join", JOIN_BEGIN_PATH, post("not json")],
      ] as const
    ) {
      const got = await statuses(path, init, `198.51.100.${name.length}:1`);
      assertEquals(got.slice(3), [429, 429], `${name}: ${got.join(",")}`);
    }
  } finally {
    await auth.stop();
  }
});
