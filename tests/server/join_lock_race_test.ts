/**
 * A lock written while a join `continue` is between its reads (the lock
 * check among them) and its commit — an admin's `tctl create lock` or
 * another auth process's automatic lock — is not missed: the commit checks
 * the lock-change marker at the version the lock check used, is refused, and
 * the step reads again and answers `LOCKED` (review6 N4; docs/security.md,
 * "Locks"). Over one real Deno KV file and one real PostgreSQL server; a
 * test seam on the real backend writes the lock just before the join's
 * commit, straight into the same backend.
 *
 * @module
 */
import { assertEquals } from "../_assert.ts";
import {
  type Harness,
  harnessOn,
  listLocks,
  onboardedBot,
  putBot,
  rejectsCode,
  tokenStatus,
} from "./_join_fixture.ts";
import { usedSessionKey } from "../../src/server/keys.ts";
import { createLockMutations } from "../../src/server/locks.ts";
import type { AtomicOperation, CommitResult } from "../../src/storage/backend.ts";
import { CountingBackend } from "../storage/_counting_backend.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { postgresMissing, startPostgres } from "../ha/_postgres.ts";
import { ignoreUnless } from "../_tools.ts";

const MARKER_PREFIX = usedSessionKey("")[0];

/**
 * A real backend (wrapped) that, while armed, writes a lock on `token` into
 * the backend it wraps just before the first commit marking a join session
 * used (the join's commit), i.e. after that join's reads.
 */
class LockBeforeJoinCommit extends CountingBackend {
  armed: string | null = null;
  fired = 0;
  ctx?: Harness["ctx"];

  override async commit(op: AtomicOperation): Promise<CommitResult> {
    const joins = op.mutations.some((m) => m.key[0] === MARKER_PREFIX);
    if (joins && this.armed !== null) {
      const token = this.armed;
      this.armed = null;
      this.fired++;
      const { mutations } = createLockMutations(this.ctx!, {
        target: { join_token: token },
        message: "raised while a join was committing",
      });
      const r = await this.inner.commit({ checks: [], mutations });
      if (!r.ok) throw new Error("the lock's write failed");
    }
    return super.commit(op);
  }
}

async function lockRaces(backend: LockBeforeJoinCommit): Promise<void> {
  let h: Harness | undefined;
  try {
    h = await harnessOn(backend);
    backend.ctx = h.ctx;
    await putBot(h.ctx, "b1");
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
    const before = await tokenStatus(h.ctx, "t1");

    // A refresh whose lock check saw no lock; the lock lands before its commit.
    backend.armed = "t1";
    await rejectsCode(() => bot.join(), "LOCKED");
    assertEquals(backend.fired, 1);
    assertEquals((await listLocks(h.ctx)).length, 1);
    assertEquals(await tokenStatus(h.ctx, "t1"), before, "the refresh committed nothing");

    // A recovery of another token: same, and no recovery is consumed.
    const other = await onboardedBot(h, "t2", { botName: "b1", limit: 5 });
    const otherBefore = await tokenStatus(h.ctx, "t2");
    backend.armed = "t2";
    await rejectsCode(() => other.join({ recover: true }), "LOCKED");
    assertEquals(backend.fired, 2);
    assertEquals(await tokenStatus(h.ctx, "t2"), otherBefore, "the recovery committed nothing");
  } finally {
    await h?.stop();
  }
}

Deno.test("a lock written between a join's reads and its commit refuses the join (Deno KV)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-lockrace-" });
  try {
    await lockRaces(new LockBeforeJoinCommit(await DenoKvBackend.open(`${dir}/auth.kv`)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a lock written between a join's reads and its commit refuses the join (PostgreSQL)",
  ignore: ignoreUnless("PostgreSQL tests", postgresMissing),
  async fn() {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    await lockRaces(new LockBeforeJoinCommit(await pg.backend("kb")));
  },
});
