import { createDiagApp, PROMETHEUS_CONTENT_TYPE } from "../../src/agent/diag_app.ts";
import { TbotMetrics } from "../../src/agent/metrics.ts";
import { exponentialBuckets, Metric } from "../../src/util/prometheus.ts";
import { ReadinessRegistry } from "../../src/agent/readiness.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";

function setup() {
  const readiness = new ReadinessRegistry(() => new Date("2026-01-01T00:00:00Z"));
  const metrics = new TbotMetrics("0.1.0");
  const app = createDiagApp(readiness, metrics);
  const get = (path: string) => app.fetch(new Request(`http://diag${path}`));
  return { readiness, metrics, app, get };
}

Deno.test("diag: /livez is always OK", async () => {
  const r = await setup().get("/livez");
  assertEquals(r.status, 200);
  assertEquals(await r.text(), "OK");
});

Deno.test("diag: /readyz is 503 while any service is initializing or unhealthy, 200 when all are healthy", async () => {
  const s = setup();
  const identity = s.readiness.register("identity");
  const output = s.readiness.register("out-1");
  let r = await s.get("/readyz");
  assertEquals(r.status, 503);
  assertEquals(r.headers.get("content-type"), "application/json");
  const text = await r.text();
  assertStringIncludes(text, '\n  "status": "unhealthy"', "pretty-printed with two spaces");
  assertEquals(JSON.parse(text), {
    status: "unhealthy",
    services: {
      identity: { status: "initializing", updated_at: null },
      "out-1": { status: "initializing", updated_at: null },
    },
  });
  identity.healthy();
  output.unhealthy("disk full");
  r = await s.get("/readyz");
  assertEquals(r.status, 503);
  assertEquals((await r.json()).services["out-1"], {
    status: "unhealthy",
    reason: "disk full",
    updated_at: "2026-01-01T00:00:00.000Z",
  });
  output.healthy();
  r = await s.get("/readyz");
  assertEquals(r.status, 200);
  assertEquals((await r.json()).status, "healthy");
});

Deno.test("diag: /readyz/{service} answers one service, 404 with Teleport's message when unknown", async () => {
  const s = setup();
  s.readiness.register("identity").healthy();
  let r = await s.get("/readyz/identity");
  assertEquals(r.status, 200);
  assertEquals(await r.json(), { status: "healthy", updated_at: "2026-01-01T00:00:00.000Z" });
  r = await s.get("/readyz/nope");
  assertEquals(r.status, 404);
  assertEquals(await r.json(), { error: 'Service named "nope" not found.' });
  r = await s.get("/elsewhere");
  assertEquals(r.status, 404);
  assertStringIncludes(await r.text(), "/readyz");
});

Deno.test("diag: /metrics is Prometheus text with the task metrics and the expiry gauge", async () => {
  const s = setup();
  const labels = { service: "identity", name: "bot-identity-renewal" };
  s.metrics.iterationsTotal.inc(labels);
  s.metrics.iterationsTotal.inc(labels);
  s.metrics.iterationsFailed.inc(labels);
  s.metrics.iterationDuration.observe(labels, 0.2);
  s.metrics.identityExpiry.set({}, 1767229200);
  const r = await s.get("/metrics");
  assertEquals(r.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  const text = await r.text();
  for (
    const line of [
      "# TYPE tbot_task_iterations_total counter",
      'tbot_task_iterations_total{service="identity",name="bot-identity-renewal"} 2',
      "# TYPE tbot_task_iterations_failed counter",
      'tbot_task_iterations_failed{service="identity",name="bot-identity-renewal"} 1',
      "# TYPE tbot_task_iteration_duration_seconds histogram",
      'tbot_task_iteration_duration_seconds_bucket{service="identity",name="bot-identity-renewal",le="0.1"} 0',
      'tbot_task_iteration_duration_seconds_bucket{service="identity",name="bot-identity-renewal",le="0.175"} 0',
      'tbot_task_iteration_duration_seconds_bucket{service="identity",name="bot-identity-renewal",le="0.30625"} 1',
      'tbot_task_iteration_duration_seconds_bucket{service="identity",name="bot-identity-renewal",le="+Inf"} 1',
      'tbot_task_iteration_duration_seconds_sum{service="identity",name="bot-identity-renewal"} 0.2',
      'tbot_task_iteration_duration_seconds_count{service="identity",name="bot-identity-renewal"} 1',
      "# TYPE tbot_identity_expiry_timestamp_seconds gauge",
      "tbot_identity_expiry_timestamp_seconds 1767229200",
      'tbot_build_info{version="0.1.0"} 1',
    ]
  ) {
    assert(text.split("\n").includes(line), `missing line: ${line}\n${text}`);
  }
  // Every sample line is "name{labels} value" with a numeric value.
  for (const l of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
    assert(/^[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+$/.test(l), `malformed sample: ${l}`);
  }
});

Deno.test("metrics: label values are escaped and buckets follow Teleport's spacing", () => {
  const m = new Metric("x_total", "help", "counter");
  m.inc({ path: 'a"b\\c\nd' });
  assertStringIncludes(m.render(), 'x_total{path="a\\"b\\\\c\\nd"} 1');
  assertEquals(exponentialBuckets(0.1, 1.75, 6), [
    0.1,
    0.175,
    0.30625,
    0.535938,
    0.937891,
    1.64131,
  ]);
});

Deno.test("diag: GET and HEAD only; a service name is percent-decoded; a trailing slash is another path", async () => {
  const s = setup();
  s.readiness.register("out 1").healthy();
  assertEquals((await s.get("/readyz/out%201")).status, 200);
  assertEquals((await s.get("/readyz/")).status, 404);
  assertEquals((await s.get("/livez/")).status, 404);
  const head = await s.app.fetch(new Request("http://diag/livez", { method: "HEAD" }));
  assertEquals(head.status, 200);
  const post = await s.app.fetch(new Request("http://diag/livez", { method: "POST" }));
  assertEquals(post.status, 404);
  assertStringIncludes(await post.text(), "/readyz/{service}");
});

/**
 * A diagnostics app over a real socket on loopback (a Request built in the test
 * would have its URL resolved already): the status of a raw request target.
 */
function servedOverSocket(s: ReturnType<typeof setup>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, s.app.fetch);
  const statusOf = async (target: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await conn.write(
      new TextEncoder().encode(`GET ${target} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n`),
    );
    const answer = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    return Number(answer.split(" ")[1]);
  };
  return { statusOf, [Symbol.asyncDispose]: () => server.shutdown() };
}

Deno.test("diag: a path is matched as sent: dot segments are not resolved, a query is not part of it", async () => {
  const s = setup();
  s.readiness.register("out").healthy();
  await using served = servedOverSocket(s);
  const { statusOf } = served;
  assertEquals(await statusOf("/readyz/../livez"), 404);
  assertEquals(await statusOf("/readyz/%2e%2e/livez"), 404);
  assertEquals(await statusOf("/livez/."), 404);
  assertEquals(await statusOf("/livez?x=/y"), 200);
  assertEquals(await statusOf("/readyz/out?verbose=1"), 200);
});

Deno.test("diag: percent-encoded unreserved characters are the characters (as under hono); reserved ones are not", async () => {
  const s = setup();
  s.readiness.register("out").healthy();
  await using served = servedOverSocket(s);
  const { statusOf } = served;
  // Letters, digits and -._~ spelled with %XX, either case (RFC 3986 §6.2.2.2).
  assertEquals(await statusOf("/%6Civez"), 200);
  assertEquals(await statusOf("/%6c%69%76%65%7A"), 200);
  assertEquals(await statusOf("/metric%73"), 200);
  assertEquals(await statusOf("/%72eadyz"), 200);
  assertEquals(await statusOf("/readyz/%6Fut"), 200);
  assertEquals(await statusOf("/readyz/%6Fu"), 404);
  // Dot segments spelled so are not resolved, a reserved %2F is not a separator, and
  // what is not an escape stays as sent.
  assertEquals(await statusOf("/readyz/%2E%2E/livez"), 404);
  assertEquals(await statusOf("/readyz%2F..%2Flivez"), 404);
  assertEquals(await statusOf("/%2Flivez"), 404);
  assertEquals(await statusOf("/livez%2F"), 404);
  assertEquals(await statusOf("/livez%"), 404);
  assertEquals(await statusOf("/%6livez"), 404);
});
