/**
 * A join `continue` delivered twice at once (a runtime's resend on a reset
 * keep-alive connection, an L7 proxy's retry), the copies racing on two auth
 * processes over one real backend — a Deno KV file and a real PostgreSQL
 * server: the copy that loses answers `SESSION_INVALID` (or `CONFLICT`,
 * retryable), no lock is ever written, and the bot's next refresh works
 * (review5 V12; docs/security.md, "Locks").
 *
 * The torn read that made a loser lock (its used-marker read before the
 * winner's commit, the token and instance after it — PostgreSQL reads each
 * key in its own snapshot) happened about once in 25 races. A test seam on
 * the loser's real backend makes it certain: {@linkcode GatedBackend} holds
 * the loser's token and instance reads until the winner has committed. It
 * only delays reads; what a read returns is the backend's. The jittered
 * rounds after it run without the seam.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import {
  editToken,
  events,
  type Harness,
  harnessOn,
  listLocks,
  onboardedBot,
  putBot,
  rejectsCode,
  TestBot,
} from "./_join_fixture.ts";
import { resourceKey, usedSessionKey } from "../../src/server/keys.ts";
import type {
  AtomicOperation,
  Backend,
  CommitResult,
  Entry,
  JsonValue,
  Key,
} from "../../src/storage/backend.ts";
import { CountingBackend } from "../storage/_counting_backend.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { postgresMissing, startPostgres } from "../ha/_postgres.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";

const sameKey = (a: Key, b: Key) => a.length === b.length && a.every((p, i) => p === b[i]);
const MARKER_PREFIX = usedSessionKey("")[0];

/**
 * A real backend (wrapped) whose reads of some keys wait, while armed, until
 * {@linkcode GatedBackend.release}; it counts held reads and finished
 * used-marker reads so the test knows when the loser has read the marker.
 */
class GatedBackend extends CountingBackend {
  held = 0;
  markerReads = 0;
  #hold: Key[] = [];
  #gate: Promise<void> | null = null;
  #open = () => {};

  /** Holds reads of `keys` from now on. */
  arm(keys: Key[]): void {
    this.#hold = keys;
    this.held = 0;
    this.markerReads = 0;
    this.#gate = new Promise((r) => (this.#open = r));
  }

  /** Lets held reads (and later ones) through. */
  release(): void {
    this.#gate = null;
    this.#open();
  }

  override async get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    const gate = this.#gate;
    if (gate && this.#hold.some((k) => sameKey(k, key))) {
      this.held++;
      await gate;
    }
    const e = await super.get<T>(key);
    if (key[0] === MARKER_PREFIX) this.markerReads++;
    return e;
  }
}

/** The error code of an answer, or "ok". */
async function codeOf(res: Response): Promise<string> {
  const body = await res.json();
  return res.ok ? "ok" : String(body?.error?.code);
}

/** Codes a losing copy may answer: nothing changed, and the client may resume or retry. */
const LOSER_CODES = new Set(["SESSION_INVALID", "CONFLICT"]);

interface Cluster {
  /** The process the bot talks to (the winner when gated). */
  a: Harness;
  /** The process the duplicate reaches. */
  l: Harness;
  gated: GatedBackend;
}

/**
 * A fetch that sends each `continue` to both processes: gated, the
 * duplicate first, held after its marker read until the original has
 * committed; otherwise the duplicate 0–`jitterMs` later. The bot gets the
 * successful answer; `losers` collects the other's code.
 */
function duplicating(
  c: Cluster,
  losers: string[],
  o: { gate?: Key[]; jitterMs?: number },
): typeof fetch {
  return async (input, init) => {
    const url = new URL(String(input));
    if (!url.pathname.endsWith("/continue")) return fetch(input, init);
    const copy = (base: string) =>
      fetch(base + url.pathname, { method: "POST", headers: init?.headers, body: init?.body });
    let first: Promise<Response>, second: Promise<Response>;
    if (o.gate) {
      c.gated.arm(o.gate);
      second = copy(c.l.baseUrl);
      await waitUntil(
        () => c.gated.held > 0 && c.gated.markerReads > 0,
        "the duplicate's held reads",
        { timeoutMs: 20_000, intervalMs: 2 },
      );
      first = copy(c.a.baseUrl);
      const done = await first.then(async (r) => ({ r, body: await r.arrayBuffer() }));
      c.gated.release();
      const lost = await codeOf(await second);
      losers.push(lost);
      return new Response(done.body, { status: done.r.status, headers: done.r.headers });
    }
    first = copy(c.a.baseUrl);
    await new Promise((r) => setTimeout(r, Math.random() * (o.jitterMs ?? 0)));
    second = copy(c.l.baseUrl);
    const answers = await Promise.all(
      [first, second].map(async (r) => {
        const res = await r;
        return { res, body: await res.arrayBuffer() };
      }),
    );
    const won = answers.filter((x) => x.res.ok);
    assertEquals(won.length, 1, "exactly one copy commits");
    for (const x of answers) {
      if (!x.res.ok) losers.push(String(JSON.parse(new TextDecoder().decode(x.body)).error.code));
    }
    return new Response(won[0].body, { status: won[0].res.status, headers: won[0].res.headers });
  };
}

async function raceRounds(c: Cluster): Promise<void> {
  await putBot(c.a.ctx, "b1");
  const bot: TestBot = await onboardedBot(c.a, "t1", { botName: "b1", limit: 1000 });
  const tokenKey = resourceKey("token", "t1");
  const instanceKey = () => resourceKey("bot_instance", "b1", bot.last!.bot_instance_id);
  const losers: string[] = [];
  const noLocks = async (what: string) =>
    assertEquals((await listLocks(c.a.ctx)).length, 0, `no lock after ${what}`);

  // Deterministic torn reads: the duplicate reads the marker before the
  // original commits and the token (and instance) after it.
  for (let i = 0; i < 3; i++) {
    await bot.join({ fetch: duplicating(c, losers, { gate: [tokenKey, instanceKey()] }) });
    await noLocks(`gated refresh ${i}`);
    await bot.join({
      recover: true,
      fetch: duplicating(c, losers, { gate: [tokenKey] }),
    });
    await noLocks(`gated recovery ${i}`);
    await bot.join(); // the next refresh works
  }
  assertEquals(losers, Array(6).fill("SESSION_INVALID"), "gated losers");

  // Free races with jitter (no seam).
  losers.length = 0;
  const rounds = 8;
  for (let i = 0; i < rounds; i++) {
    await bot.join({ fetch: duplicating(c, losers, { jitterMs: 10 }) });
    await bot.join({ recover: true, fetch: duplicating(c, losers, { jitterMs: 10 }) });
    await noLocks(`jittered round ${i}`);
  }
  assertEquals(losers.length, 2 * rounds);
  for (const code of losers) assert(LOSER_CODES.has(code), `loser answered ${code}`);
  await bot.join();
  await noLocks("the last refresh");
}

async function onBackends(open: () => Promise<Backend>): Promise<void> {
  const gated = new GatedBackend(await open());
  const a = await harnessOn(await open());
  const l = await harnessOn(gated, a.clock);
  try {
    await raceRounds({ a, l, gated });
  } finally {
    gated.release();
    await l.stop();
    await a.stop();
  }
}

Deno.test("duplicated join continues on Deno KV: no lock, the loser is SESSION_INVALID", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-dup-" });
  try {
    await onBackends(() => DenoKvBackend.open(`${dir}/auth.kv`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "duplicated join continues on PostgreSQL: no lock, the loser is SESSION_INVALID",
  ignore: ignoreUnless("PostgreSQL tests", postgresMissing),
  async fn() {
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    await onBackends(() => pg.backend("kb"));
  },
});

/** A real backend (wrapped) that runs `before` once, ahead of the first commit writing a lock. */
class BeforeLockCommit extends CountingBackend {
  fired = 0;
  constructor(inner: Backend, readonly before: () => Promise<void>) {
    super(inner);
  }
  override async commit(op: AtomicOperation): Promise<CommitResult> {
    const lockPrefix = resourceKey("lock");
    const locks = op.mutations.some((m) => lockPrefix.every((p, i) => m.key[i] === p));
    if (locks && this.fired++ === 0) await this.before();
    return super.commit(op);
  }
}

Deno.test("a lock whose token moved before its commit is decided again, then written once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "keybound-dup-" });
  let h: Harness | undefined;
  try {
    // An admin edit (not one a join relies on) lands between the reads and the lock's commit.
    const backend = new BeforeLockCommit(
      await DenoKvBackend.open(`${dir}/auth.kv`),
      () => editToken(h!.ctx, "t1", (t) => void (t.metadata.labels = { edited: "yes" })),
    );
    h = await harnessOn(backend);
    await putBot(h.ctx, "b1");
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
    const oldIdentity = bot.identity!;
    await bot.join();
    const copy = new TestBot(h, "t1", bot.keys.clone());
    copy.identity = oldIdentity;
    copy.joinState = bot.joinState;
    await rejectsCode(() => copy.join(), "GENERATION_MISMATCH", "stored=2, presented=1");
    assertEquals(backend.fired, 2, "the first lock commit was refused and the second made");
    assertEquals((await listLocks(h.ctx)).length, 1);
    assertEquals((await events(h.ctx, "lock.created")).length, 1);
    assertEquals((await events(h.ctx, "bot.generation_mismatch")).length, 1);
  } finally {
    await h?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
