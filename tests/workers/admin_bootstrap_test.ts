/**
 * The Worker's one-time admin bootstrap route, driven directly (it is
 * runtime-agnostic): disabled without a token, refuses short tokens, wrong
 * tokens and reuse, and lets exactly one of many concurrent requests win.
 *
 * @module
 */
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { ADMIN_ROLE, identityFromSubject } from "../../src/protocol/subject.ts";
import { parseCertificate } from "../../src/pki/mod.ts";
import { listAudit } from "../../src/server/audit.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import { silentLogger } from "../../src/util/log.ts";
import {
  ADMIN_BOOTSTRAP_PATH,
  handleAdminBootstrap,
} from "../../runtime-adapters/workers/admin_bootstrap.ts";
import { assert, assertEquals } from "../_assert.ts";

const TOKEN = "c0ffee".repeat(8);

const cluster = () =>
  bootstrapCluster(new MemoryBackend(), {
    clusterName: "bootstrap.example",
    log: silentLogger,
    version: "0.0.0-test",
  });

const post = (token?: string) =>
  new Request(`https://auth.example${ADMIN_BOOTSTRAP_PATH}`, {
    method: "POST",
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });

Deno.test("admin bootstrap: no route without the secret; a short secret disables it", async () => {
  const ctx = await cluster();
  const off = await handleAdminBootstrap(post(TOKEN), ctx, undefined);
  assertEquals(off.status, 404);
  await off.body?.cancel();
  const short = await handleAdminBootstrap(post("short"), ctx, "short");
  assertEquals(short.status, 400);
  assertEquals((await short.json()).error.code, "CONFIG_INVALID");
  const missing = await handleAdminBootstrap(post(), ctx, TOKEN);
  assertEquals(missing.status, 401);
  await missing.body?.cancel();
});

Deno.test("admin bootstrap: one of ten concurrent requests gets an @admin identity", async () => {
  const ctx = await cluster();
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => handleAdminBootstrap(post(TOKEN), ctx, TOKEN)),
  );
  const winners = answers.filter((r) => r.status === 200);
  assertEquals(winners.length, 1);
  for (const r of answers.filter((r) => r.status !== 200)) {
    assertEquals(r.status, 403);
    await r.body?.cancel();
  }
  const id = await parseIdentityFile(await winners[0].text());
  const subject = identityFromSubject(parseCertificate(id.certDer).subject);
  assert(
    typeof subject !== "string" && subject.roles.includes(ADMIN_ROLE),
    JSON.stringify(subject),
  );
  const audit = (await listAudit(ctx, { type: "cert.create" })).items;
  assertEquals(audit.length, 1);
  assertEquals(audit[0].cert_type, "admin_identity");
  const other = "d00d".repeat(10);
  assertEquals((await handleAdminBootstrap(post(other), ctx, other)).status, 200, "a new token");
});
