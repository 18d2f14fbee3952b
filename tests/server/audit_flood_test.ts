/**
 * Issue #8 item 3: 20,000 failed `begin`s from one address, over real HTTP,
 * into a real Deno KV file. Failed joins are counted into one row per token
 * name, reason, source and minute (with a per-source cap), so the backend
 * grows by a fixed number of rows per minute; `tctl audit ls --limit 5`
 * reads as many rows as on an empty log.
 *
 * @module
 */
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { JOIN_BEGIN_PATH } from "../../src/protocol/messages.ts";
import { JOIN_FAILURE_ROWS_PER_SOURCE_MINUTE, listAudit } from "../../src/server/audit.ts";
import { assert, assertEquals } from "../_assert.ts";
import { CountingBackend } from "../storage/_counting_backend.ts";
import { startInProcessAuth, tctl } from "../tctl/_harness.ts";

const FLOOD = 20_000;
const PARALLEL = 16;
const TOKEN_NAMES = 100;

Deno.test("20,000 failed begins from one address: bounded rows, audit ls reads one page", async () => {
  let counting: CountingBackend | undefined;
  const auth = await startInProcessAuth({
    wrap: (b) => (counting = new CountingBackend(b)),
    app: { rateLimit: { perSecond: 1e9, burst: 1e9 } },
  });
  const backend = counting!;
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  try {
    const auditLs = async () => {
      const before = backend.rowsRead;
      const r = await tctl(["audit", "ls", "--limit", "5", "--format", "json", ...conn]);
      assertEquals(r.code, 0, r.stderr);
      return { rows: backend.rowsRead - before, events: JSON.parse(r.stdout) as unknown[] };
    };
    // Some events exist before the flood, as on a live cluster.
    for (const user of ["bot-u", "bot-v", "bot-w", "bot-x", "bot-y", "bot-z"]) {
      const r = await tctl(["lock", "--user", user, "--message", "m", ...conn]);
      assertEquals(r.code, 0, r.stderr);
    }
    await auditLs(); // warms the lock cache the admin's request checks
    const empty = await auditLs();
    const rowsBefore = (await backend.inner.list([])).length;

    const kp = await generateKeyPair("ES256");
    const keys = {
      public_tls_key: await exportSpkiPem(kp.publicKey),
      public_ssh_key: await toAuthorizedKey(kp.publicKey),
    };
    const started = Date.now();
    const rssBefore = Deno.memoryUsage().rss;
    let next = 0;
    const statuses = new Map<number, number>();
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < FLOOD) {
        const i = next++;
        const res = await fetch(auth.url + JOIN_BEGIN_PATH, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ token_name: `nope-${i % TOKEN_NAMES}`, ...keys }),
        });
        await res.body?.cancel();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }));
    console.log(
      `flood: ${FLOOD} begins in ${Date.now() - started} ms; rss ${rssBefore >> 20} -> ${
        Deno.memoryUsage().rss >> 20
      } MB`,
    );
    const minutes = Math.floor(Date.now() / 60_000) - Math.floor(started / 60_000) + 1;
    assertEquals([...statuses], [[403, FLOOD]]);

    // Per minute and source: up to the cap of (token, reason) rows plus one
    // overflow row, each stored with its type-index twin, and one counter.
    const perMinute = 2 * (JOIN_FAILURE_ROWS_PER_SOURCE_MINUTE + 1) + 1;
    const added = (await backend.inner.list([])).length - rowsBefore;
    assert(
      added <= minutes * perMinute,
      `${FLOOD} failed begins added ${added} rows over ${minutes} minute(s)`,
    );
    const failed = (await listAudit(auth.ctx, { type: "join.failed", limit: 1000 })).items;
    const counted = failed.reduce((n, e) => n + (e.count as number), 0);
    assertEquals(counted, FLOOD, "every failure is counted");
    assert(failed.some((e) => e.overflow === true), "token names past the cap share a row");

    const flooded = await auditLs();
    assertEquals(flooded.events.length, 5);
    assertEquals(flooded.rows, empty.rows, "audit ls reads as many rows as before the flood");
    const byType = backend.rowsRead;
    const locks = await listAudit(auth.ctx, { type: "lock.created", limit: 5 });
    assertEquals(locks.items.length, 5);
    assertEquals(backend.rowsRead - byType, 6, "a type filter reads only that type's rows");
  } finally {
    await auth.stop();
  }
});
