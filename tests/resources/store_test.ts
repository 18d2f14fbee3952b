import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { AlreadyExistsError, KeyboundError, NotFoundError } from "../../src/errors.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { listAudit } from "../../src/server/audit.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { resourceKey } from "../../src/server/keys.ts";
import {
  deleteResource,
  getResource,
  listResources,
  putResource,
  requestTokenRotation,
  withRevision,
} from "../../src/server/resources/mod.ts";
import { Bot, Lock, Token } from "../../src/resources/schemas.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { silentLogger } from "../../src/util/log.ts";

const admin = { user: "admin", remoteAddr: "127.0.0.1" };

async function withStore(fn: (ctx: ServerContext) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const backend = await DenoKvBackend.open(`${dir}/kv.sqlite`);
  let now = new Date("2026-11-23T10:00:00Z");
  const ctx = {
    backend,
    clusterName: "test.example",
    version: "0.1.0",
    now: () => (now = new Date(now.getTime() + 1000)),
    log: silentLogger,
  } as unknown as ServerContext;
  try {
    await fn(ctx);
  } finally {
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const token = (status?: unknown) =>
  Token.parse({
    kind: "token",
    version: "v2",
    metadata: { name: "example" },
    spec: {
      roles: ["Bot"],
      bot_name: "example",
      join_method: "bound_keypair",
      bound_keypair: { recovery: { limit: 1, mode: "standard" } },
    },
    ...(status ? { status } : {}),
  });

Deno.test("create refuses an existing resource; upsert overwrites", async () => {
  await withStore(async (ctx) => {
    const bot = Bot.parse({ kind: "bot", version: "v1", metadata: { name: "example" }, spec: {} });
    const first = await putResource(ctx, bot, "create", admin);
    assert(first.created);
    assertEquals((first.stored.resource as Bot).status, {
      user_name: "bot-example",
      role_name: "bot-example",
    });
    await assertRejects(
      () => putResource(ctx, bot, "create", admin),
      AlreadyExistsError,
      'bot "example" already exists',
    );
    const second = await putResource(
      ctx,
      { ...bot, spec: { ...bot.spec, roles: ["access"] } },
      "upsert",
      admin,
    );
    assert(!second.created);
    assertEquals((second.stored.resource as Bot).spec.roles, ["access"]);
    const events = (await listAudit(ctx, { type: "resource.created" })).items;
    assertEquals(events.map((e) => [e.kind, e.name, e.overwritten]), [["bot", "example", true], [
      "bot",
      "example",
      false,
    ]]);
  });
});

Deno.test("token upsert without status keeps the stored binding; explicit status applies", async () => {
  await withStore(async (ctx) => {
    const created = await putResource(ctx, token(), "create", admin);
    const secret = (created.stored.resource as Token).status?.bound_keypair?.registration_secret;
    assert(secret && /^[0-9a-f]{32}$/.test(secret));
    // Simulate a join binding the token, as the join code would write it.
    const bound = token({
      bound_keypair: { bound_public_key: "ssh-ed25519 AAAA", recovery_count: 1 },
    });
    await ctx.backend.commit({
      checks: [],
      mutations: [{ type: "set", key: resourceKey("token", "example"), value: bound as never }],
    });
    const reapplied = await putResource(ctx, token(), "upsert", admin);
    assertEquals((reapplied.stored.resource as Token).status?.bound_keypair, {
      bound_public_key: "ssh-ed25519 AAAA",
      recovery_count: 1,
    });
    const key = await toAuthorizedKey((await generateKeyPair("EdDSA")).publicKey);
    const reset = await putResource(
      ctx,
      token({ bound_keypair: { bound_public_key: key, recovery_count: 0 } }),
      "upsert",
      admin,
    );
    assertEquals((reset.stored.resource as Token).status?.bound_keypair?.recovery_count, 0);
  });
});

Deno.test("a stale metadata.revision is a conflict; the current one is accepted", async () => {
  await withStore(async (ctx) => {
    const { stored } = await putResource(ctx, token(), "create", admin);
    const read = withRevision(stored) as Token;
    await requestTokenRotation(ctx, "example");
    const e = await assertRejects(
      () => putResource(ctx, read, "upsert", admin),
      KeyboundError,
      "changed since revision",
    );
    assertEquals(e.code, "CONFLICT");
    const current = withRevision((await getResource(ctx, "token", "example"))!) as Token;
    const ok = await putResource(ctx, current, "upsert", admin);
    assertEquals(ok.stored.resource.metadata.revision, undefined, "revision is not stored");
    assert((ok.stored.resource as Token).spec.bound_keypair.rotate_after, "rotate_after was kept");
  });
});

Deno.test("a revision of a since-deleted resource is a conflict and re-creates nothing", async () => {
  await withStore(async (ctx) => {
    const { stored } = await putResource(ctx, token(), "create", admin);
    const read = withRevision(stored) as Token;
    await deleteResource(ctx, "token", "example", admin);
    const e = await assertRejects(
      () => putResource(ctx, read, "upsert", admin),
      KeyboundError,
      "was deleted since revision",
    );
    assertEquals(e.code, "CONFLICT");
    assertEquals(await getResource(ctx, "token", "example"), null);
    const { revision: _r, ...metadata } = read.metadata;
    const again = await putResource(ctx, { ...read, metadata }, "upsert", admin);
    assert(again.created, "without a revision the resource is created again");
  });
});

Deno.test("locks get created_at/created_by and a lock.created event", async () => {
  await withStore(async (ctx) => {
    const lock = Lock.parse({
      kind: "lock",
      version: "v2",
      metadata: { name: "l1" },
      spec: { target: { join_token: "example" }, message: "compromised" },
    });
    const { stored } = await putResource(ctx, lock, "create", admin);
    const spec = (stored.resource as Lock).spec;
    assertEquals(spec.created_by, "admin");
    assert(spec.created_at && !Number.isNaN(Date.parse(spec.created_at)));
    const [event] = (await listAudit(ctx, { type: "lock.created" })).items;
    assertEquals([event.lock_name, event.target, event.message, event.created_by], [
      "l1",
      { join_token: "example" },
      "compromised",
      "admin",
    ]);
  });
});

Deno.test("delete removes, emits resource.deleted, and NOT_FOUND after", async () => {
  await withStore(async (ctx) => {
    await putResource(ctx, token(), "create", admin);
    await deleteResource(ctx, "token", "example", admin);
    assertEquals(await getResource(ctx, "token", "example"), null);
    await assertRejects(() => deleteResource(ctx, "token", "example", admin), NotFoundError);
    const [event] = (await listAudit(ctx, { type: "resource.deleted" })).items;
    assertEquals([event.kind, event.name, event.user], ["token", "example", "admin"]);
  });
});

Deno.test("bot instances are addressed as bot/id; expired resources read as absent", async () => {
  await withStore(async (ctx) => {
    const id = "6f1c0000-0000-4000-8000-000000000000";
    const instance = {
      kind: "bot_instance",
      version: "v1",
      metadata: { name: `example/${id}` },
      spec: { bot_name: "example", instance_id: id },
      status: { latest_authentications: [], latest_heartbeats: [] },
    };
    await ctx.backend.commit({
      checks: [],
      mutations: [{
        type: "set",
        key: resourceKey("bot_instance", "example", id),
        value: instance,
      }],
    });
    assertEquals(
      (await getResource(ctx, "bot_instance", `example/${id}`))?.resource.metadata.name,
      `example/${id}`,
    );
    assertEquals((await listResources(ctx, "bot_instance")).items.length, 1);
    await deleteResource(ctx, "bot_instance", `example/${id}`, admin);
    assertEquals(await listResources(ctx, "bot_instance"), { items: [] });

    const expired = Bot.parse({
      kind: "bot",
      version: "v1",
      metadata: { name: "old", expires: "2026-11-23T09:00:00Z" },
    });
    await assertRejects(
      () => putResource(ctx, expired, "create", admin),
      KeyboundError,
      "metadata.expires:",
    );
    await ctx.backend.commit({
      checks: [],
      mutations: [{ type: "set", key: resourceKey("bot", "old"), value: expired as never }],
    });
    assertEquals(await getResource(ctx, "bot", "old"), null);
    assertEquals(await listResources(ctx, "bot"), { items: [] });
  });
});
