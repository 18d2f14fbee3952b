/**
 * Cases D (refresh) and E (recovery), recovery modes, locks, join-state and
 * generation checks, and rotation, over real HTTP with a Deno KV file.
 */
import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import {
  editToken,
  events,
  type Harness,
  listLocks,
  onboardedBot,
  putBot,
  putResource,
  rejectsCode,
  startHarness,
  TestBot,
  tokenStatus,
} from "./_join_fixture.ts";
import { publicKeysEqual } from "../../src/crypto/keys.ts";
import { parseAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import type { BotInstance } from "../../src/resources/schemas.ts";
import { resourceKey } from "../../src/server/keys.ts";
import { fromBase64Url, toBase64Url, utf8 } from "../../src/util/encoding.ts";

function withHarness(name: string, fn: (h: Harness) => Promise<void>) {
  Deno.test(name, async () => {
    const h = await startHarness();
    try {
      await putBot(h.ctx, "b1");
      await fn(h);
    } finally {
      await h.close();
    }
  });
}

async function instance(h: Harness, id: string): Promise<BotInstance> {
  const e = await h.ctx.backend.get<BotInstance>(resourceKey("bot_instance", "b1", id));
  if (!e) throw new Error("instance missing");
  return e.value;
}

async function sameKey(a: string, b: string): Promise<boolean> {
  return publicKeysEqual((await parseAuthorizedKey(a)).key, (await parseAuthorizedKey(b)).key);
}

withHarness("D: refresh keeps the instance, bumps the generation, consumes nothing", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  const first = bot.last!;
  const second = await bot.join();
  const third = await bot.join();
  assertEquals(second.bot_instance_id, first.bot_instance_id);
  assertEquals([second.generation, third.generation], [2, 3]);
  const status = await tokenStatus(h.ctx, "t1");
  assertEquals(status.recovery_count, 1);
  const inst = await instance(h, first.bot_instance_id);
  assertEquals(inst.status.latest_authentications.map((a) => a.generation), [1, 2, 3]);
  assertEquals(inst.status.initial_authentication?.generation, 1);
  assertEquals(inst.status.latest_authentications[2].join_token, "t1");
  assert(inst.status.latest_authentications[2].public_key.includes("BEGIN PUBLIC KEY"));
  assert(Date.parse(inst.metadata.expires!) >= h.clock.t.getTime() + 3600_000 * 2 - 1000);
  assertEquals((await events(h.ctx, "bot.join")).length, 3);
  assertEquals((await events(h.ctx, "join_token.bound_keypair.recovery")).length, 1);
});

withHarness("D: history is capped at 10 authentications", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  for (let i = 0; i < 11; i++) await bot.join();
  const inst = await instance(h, bot.last!.bot_instance_id);
  assertEquals(inst.status.latest_authentications.length, 10);
  assertEquals(inst.status.latest_authentications.map((a) => a.generation)[9], 12);
  assertEquals(inst.status.initial_authentication?.generation, 1);
});

withHarness("E: recovery makes a new instance, links the previous one, counts it", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 2 });
  const old = bot.last!.bot_instance_id;
  const r = await bot.join({ recover: true });
  assertNotEquals(r.bot_instance_id, old);
  assertEquals(r.generation, 1);
  const status = await tokenStatus(h.ctx, "t1");
  assertEquals(status.recovery_count, 2);
  assertEquals(status.bound_bot_instance_id, r.bot_instance_id);
  assertEquals((await instance(h, r.bot_instance_id)).spec.previous_instance_id, old);
  // Limit reached: the next recovery is refused after the challenge, nothing changes.
  await rejectsCode(
    () => bot.join({ recover: true }),
    "NO_RECOVERIES_REMAINING",
    "no rejoins remaining",
  );
  assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 2);
  // A refresh still works: it consumes nothing.
  assertEquals((await bot.join()).generation, 2);
  // Raising the limit grants one more recovery.
  await editToken(h.ctx, "t1", (t) => (t.spec.bound_keypair.recovery.limit = 3));
  await bot.join({ recover: true });
  assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 3);
});

withHarness(
  "modes: relaxed ignores the limit but needs the join state; insecure needs neither",
  async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 1, mode: "relaxed" });
    await bot.join({ recover: true });
    await bot.join({ recover: true });
    assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 3);
    const stateless = new TestBot(h, "t1", bot.keys);
    await rejectsCode(
      () => stateless.join(),
      "JOIN_STATE_REQUIRED",
      "previous join state is required but was not provided",
    );
    assertEquals((await listLocks(h.ctx)).length, 0, "a missing join state creates no lock");
    await editToken(h.ctx, "t1", (t) => (t.spec.bound_keypair.recovery.mode = "insecure"));
    await stateless.join();
    const copy = new TestBot(h, "t1", bot.keys);
    copy.joinState = "garbage";
    await copy.join();
    assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 5);
    assertEquals((await listLocks(h.ctx)).length, 0);
    // Back in standard mode with count > limit: recovery is refused.
    await editToken(h.ctx, "t1", (t) => (t.spec.bound_keypair.recovery.mode = "standard"));
    await rejectsCode(() => copy.join({ recover: true }), "NO_RECOVERIES_REMAINING");
  },
);

withHarness("lock on the token blocks refresh and recovery after the challenge", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
  await putResource(h.ctx, "lock", {
    kind: "lock",
    version: "v2",
    metadata: { name: "l1" },
    spec: { target: { join_token: "t1" }, message: "investigating" },
  });
  await rejectsCode(() => bot.join(), "LOCKED", "investigating");
  await rejectsCode(() => bot.join({ recover: true }), "LOCKED");
  assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 1);
  // An expired lock is not in force.
  await putResource(h.ctx, "lock", {
    kind: "lock",
    version: "v2",
    metadata: { name: "l1" },
    spec: {
      target: { join_token: "t1" },
      expires: new Date(h.clock.t.getTime() - 1000).toISOString(),
    },
  });
  await bot.join();
  // A lock on another token does not matter.
  await putResource(h.ctx, "lock", {
    kind: "lock",
    version: "v2",
    metadata: { name: "l2" },
    spec: { target: { join_token: "other" } },
  });
  await bot.join();
});

async function expectJoinStateLock(h: Harness, bot: TestBot, recover: boolean) {
  await rejectsCode(
    () => bot.join({ recover }),
    "JOIN_STATE_INVALID",
    "join state verification failed",
  );
  const locks = await listLocks(h.ctx);
  assertEquals(locks.length, 1);
  assertEquals(locks[0].spec.target, { join_token: "t1" });
  assertEquals(
    locks[0].spec.message,
    'The join token "t1" has been locked by bot "b1" after a client failed to verify its ' +
      "join state, possibly indicating a stolen keypair.",
  );
  assert(/^[0-9a-f-]{36}$/.test(locks[0].metadata.name));
  const [failed] = await events(h.ctx, "join_token.bound_keypair.join_state_verification_failed");
  assertEquals([failed.token_name, failed.bot_name, failed.status.success], ["t1", "b1", false]);
  const [created] = await events(h.ctx, "lock.created");
  assertEquals(created.lock_name, locks[0].metadata.name);
  // From now on the token is locked for everyone.
  await rejectsCode(() => bot.join({ recover }), "LOCKED");
}

withHarness("join state: a forged document locks the token", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
  const [head, payload, sig] = bot.joinState!.split(".");
  const claims = JSON.parse(new TextDecoder().decode(fromBase64Url(payload)));
  claims.recovery_sequence = 1;
  claims.bot_name = "x";
  bot.joinState = `${head}.${toBase64Url(utf8(JSON.stringify(claims)))}.${sig}`;
  await expectJoinStateLock(h, bot, false);
});

withHarness(
  "join state: checked against the token as read at continue, not as begin saw it",
  async (h) => {
    // The server may verify the join state while it checks the request, with
    // what `begin` saw; a token whose bot changed in between must be judged on
    // what it says now (the document names b1, the token now b2).
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
    await putBot(h.ctx, "b2");
    const moving: typeof fetch = async (input, init) => {
      if (String(input).endsWith("/continue")) {
        await editToken(h.ctx, "t1", (t) => (t.spec.bot_name = "b2"));
      }
      return fetch(input, init);
    };
    await rejectsCode(() => bot.join({ fetch: moving }), "JOIN_STATE_INVALID");
    assertEquals((await listLocks(h.ctx)).length, 1);
  },
);

withHarness("join state: a truncated document locks the token", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
  bot.joinState = bot.joinState!.slice(0, -10);
  await expectJoinStateLock(h, bot, true);
});

withHarness("join state: a stale copy (after a thief's recovery) locks the token", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
  const thief = new TestBot(h, "t1", bot.keys.clone());
  thief.joinState = bot.joinState;
  await thief.join({ recover: true });
  assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 2);
  // The legitimate bot still has valid certificates: its refresh detects the desync.
  await expectJoinStateLock(h, bot, false);
  await rejectsCode(() => thief.join(), "LOCKED");
});

withHarness("generation: a replayed older certificate locks the token", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
  const oldIdentity = bot.identity!;
  const oldState = bot.joinState;
  await bot.join();
  const copy = new TestBot(h, "t1", bot.keys.clone());
  copy.identity = oldIdentity;
  copy.joinState = oldState;
  const e = await rejectsCode(() => copy.join(), "GENERATION_MISMATCH", "stored=2, presented=1");
  assert(e.message.includes(`b1/${bot.last!.bot_instance_id}`));
  const locks = await listLocks(h.ctx);
  assertEquals(locks.length, 1);
  assertEquals(locks[0].spec.target, { join_token: "t1" });
  assert(locks[0].spec.message!.includes("certificate generation mismatch by b1/"));
  const [mismatch] = await events(h.ctx, "bot.generation_mismatch");
  assertEquals([mismatch.stored, mismatch.presented], [2, 1]);
  assertEquals(mismatch.bot_instance_id, bot.last!.bot_instance_id);
  assertEquals((await events(h.ctx, "lock.created")).length, 1);
  await rejectsCode(() => bot.join(), "LOCKED");
});

withHarness("generation: a missing instance record counts as a mismatch", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  await h.ctx.backend.commit({
    checks: [],
    mutations: [{
      type: "delete",
      key: resourceKey("bot_instance", "b1", bot.last!.bot_instance_id),
    }],
  });
  await rejectsCode(() => bot.join(), "GENERATION_MISMATCH", "stored=none");
  assertEquals((await listLocks(h.ctx)).length, 1);
});

withHarness("rotation: rotate_after rotates once on refresh; reuse is refused", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  const oldKey = bot.keys.keys[0].publicKey;
  const before = await tokenStatus(h.ctx, "t1");
  await editToken(
    h.ctx,
    "t1",
    (t) => (t.spec.bound_keypair.rotate_after = h.clock.t.toISOString()),
  );

  // Answering with the current key is refused and changes nothing.
  bot.keys.rotationOverride = oldKey;
  await rejectsCode(
    () => bot.join(),
    "BAD_PARAMETER",
    "public key may not be reused after rotation",
  );
  assertEquals(await tokenStatus(h.ctx, "t1"), before);
  const [refused] = await events(h.ctx, "join_token.bound_keypair.rotation");
  assertEquals(refused.status.success, false);
  bot.keys.rotationOverride = undefined;

  h.clock.advance(5);
  const r = await bot.join();
  assertEquals(bot.keys.keys.length, 2);
  const newKey = bot.keys.keys[0].publicKey;
  assert(await sameKey(r.bound_keypair.public_key, newKey));
  const status = await tokenStatus(h.ctx, "t1");
  assert(await sameKey(status.bound_public_key!, newKey));
  assertEquals(status.last_rotated_at, h.clock.t.toISOString());
  assertEquals(status.recovery_count, 1);
  const rotations = (await events(h.ctx, "join_token.bound_keypair.rotation"))
    .filter((e) => e.status.success);
  assertEquals(rotations.length, 1);
  assertEquals(rotations[0].previous_public_key, oldKey);
  assert(await sameKey(rotations[0].new_public_key as string, newKey));

  // Idempotent: no second rotation until rotate_after moves.
  await bot.join();
  assertEquals(bot.keys.keys.length, 2);
  // The old key no longer works for a recovery.
  const oldOnly = new TestBot(h, "t1");
  oldOnly.keys.keys = [bot.keys.keys[1]];
  oldOnly.joinState = bot.joinState;
  await rejectsCode(() => oldOnly.join(), "CHALLENGE_FAILED");
});

withHarness("rotation: a secret onboarding with rotate_after due rotates twice", async (h) => {
  const bot = new TestBot(h, "t1");
  const { putToken } = await import("./_join_fixture.ts");
  await putToken(h.ctx, "t1", {
    botName: "b1",
    registrationSecret: "s",
    rotateAfter: new Date(h.clock.t.getTime() - 1000).toISOString(),
  });
  const r = await bot.join({ secret: "s" });
  assertEquals(bot.keys.keys.length, 2);
  assert(await sameKey(r.bound_keypair.public_key, bot.keys.keys[0].publicKey));
  const status = await tokenStatus(h.ctx, "t1");
  assertEquals(status.last_rotated_at, h.clock.t.toISOString());
  const [rot] = await events(h.ctx, "join_token.bound_keypair.rotation");
  assertEquals(rot.previous_public_key, bot.keys.keys[1].publicKey);
});
