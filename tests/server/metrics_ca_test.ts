/**
 * The CA expiry gauge on `/metrics`: one row per X.509 CA certificate, plus
 * the user CA's Ed25519 X.509 certificate (`key="ed25519"`) exactly while the
 * key exists.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { parseCertificate } from "../../src/pki/mod.ts";
import type { ServerContext, TlsCaKey } from "../../src/server/context.ts";
import type { Backend } from "../../src/storage/backend.ts";
import { AuthMetrics } from "../../src/server/metrics.ts";
import { newCluster } from "./_cluster_fixture.ts";

const NAME = "keybound_auth_ca_expiry_timestamp_seconds";

/** The value of the series of family `name` with exactly `labels`, or undefined. */
function series(text: string, labels: string, name = NAME): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

const notAfter = (k: TlsCaKey) => parseCertificate(k.certDer).notAfter.getTime() / 1000;

/** `ctx` with the user CA's Ed25519 keys replaced. */
function withEd25519(ctx: ServerContext, signing: TlsCaKey | undefined, trusted: TlsCaKey[]) {
  const { tlsEd25519: _, ...user } = ctx.cas.user;
  return {
    ...ctx,
    cas: {
      ...ctx.cas,
      user: { ...user, ...(signing ? { tlsEd25519: signing } : {}), trustedTlsEd25519: trusted },
    },
  };
}

Deno.test("CA expiry: a row for the user CA's Ed25519 certificate while the key exists", async () => {
  const { ctx } = await newCluster();
  const ed = ctx.cas.user.tlsEd25519;
  assert(ed);
  const metrics = new AuthMetrics();
  let text = await metrics.render(ctx);
  assertEquals(series(text, 'ca="user"'), notAfter(ctx.cas.user.tls!));
  assertEquals(series(text, 'ca="host"'), notAfter(ctx.cas.host.tls!));
  assertEquals(series(text, 'ca="user",key="ed25519"'), notAfter(ed));
  // A cluster created before the key, in the first rotation's init: only the new set has it.
  text = await metrics.render(withEd25519(ctx, undefined, [ed]));
  assertEquals(series(text, 'ca="user",key="ed25519"'), notAfter(ed));
  // No key (before that rotation, or after its rollback): no row, also on a later scrape.
  text = await metrics.render(withEd25519(ctx, undefined, []));
  assertEquals(series(text, 'ca="user",key="ed25519"'), undefined);
  assertEquals(series(text, 'ca="user"'), notAfter(ctx.cas.user.tls!));
});

Deno.test("CA rows: one scrape reads one CA snapshot, whatever replaces it meanwhile", async () => {
  const { ctx } = await newCluster();
  const ed = ctx.cas.user.tlsEd25519;
  assert(ed);
  const noKey = withEd25519(ctx, undefined, []).cas;
  const backend = ctx.backend;
  // The scrape's one storage read (the instance count) sees the CAs replaced, as a reload
  // (a rollback dropping the key) during the scrape would.
  const live: ServerContext = { ...ctx };
  const swapping: Backend = {
    get: (key) => backend.get(key),
    list: (prefix, options) => {
      live.cas = noKey;
      return backend.list(prefix, options);
    },
    commit: (op) => backend.commit(op),
    close: () => backend.close(),
  };
  live.backend = swapping;
  const metrics = new AuthMetrics();
  let text = await metrics.render(live);
  assertEquals(series(text, 'ca="user"', "keybound_auth_ca_trusted_ed25519_x509_keys"), 1);
  assertEquals(series(text, 'ca="user",key="ed25519"'), notAfter(ed));
  assertEquals(ed.notAfter.getTime() / 1000, notAfter(ed));
  // The next scrape reads the new snapshot (the instance count is not read again so soon).
  text = await metrics.render(live);
  assertEquals(series(text, 'ca="user"', "keybound_auth_ca_trusted_ed25519_x509_keys"), 0);
  assertEquals(series(text, 'ca="user",key="ed25519"'), undefined);
});

Deno.test("backend metrics: a commit whose check fails is counted as a conflict, not as ok", async () => {
  const { ctx } = await newCluster();
  const metrics = new AuthMetrics();
  const backend = metrics.meter(ctx.backend);
  const key = ["metrics-test", "k"];
  assert((await backend.commit({ checks: [], mutations: [{ type: "set", key, value: 1 }] })).ok);
  // A check on a version the key no longer has: the compare-and-swap a racing loser makes.
  const stale = await backend.commit({
    checks: [{ key, version: "not-its-version" }],
    mutations: [{ type: "set", key, value: 2 }],
  });
  assert(!stale.ok);
  const text = await metrics.render({ ...ctx, backend });
  assert(text.split("\n").includes("keybound_auth_backend_commit_conflicts_total 1"), text);
  assertEquals(
    series(text, 'result="ok"', "keybound_auth_backend_commit_duration_seconds_count"),
    1,
  );
});
