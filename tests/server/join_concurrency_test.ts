/**
 * Concurrency, replay, expiry, request binding of refreshes, heartbeats and a
 * server restart, over real HTTP with a Deno KV file.
 */
import { assertEquals } from "../_assert.ts";
import {
  attachHarness,
  events,
  getToken,
  type Harness,
  listLocks,
  onboardedBot,
  postRaw,
  putBot,
  putResource,
  rejectsCode,
  startHarness,
  TestBot,
  tokenStatus,
} from "./_join_fixture.ts";
import type { KeyboundError } from "../../src/errors.ts";
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import {
  challengeHash,
  type RequestSigner,
  signRequest,
} from "../../src/protocol/signed_request.ts";
import { botSigner, newCluster } from "./_cluster_fixture.ts";
import type { BotInstance } from "../../src/resources/schemas.ts";
import { resourceKey } from "../../src/server/keys.ts";

function withHarness(name: string, fn: (h: Harness) => Promise<void>) {
  Deno.test(name, async () => {
    let h = await startHarness();
    try {
      await putBot(h.ctx, "b1");
      await fn(h);
    } finally {
      // A test may have restarted the harness; close whatever is current.
      h = (h as Harness & { current?: Harness }).current ?? h;
      await h.close();
    }
  });
}

/** A fetch that holds every continue request until `n` of them are waiting. */
function barrierFetch(n: number): typeof fetch {
  let waiting = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  return async (input, init) => {
    if (String(input).endsWith("/continue")) {
      if (++waiting === n) release();
      await gate;
    }
    return fetch(input, init);
  };
}

withHarness(
  "20 concurrent recoveries: exactly one succeeds and the count rises by one",
  async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 100 });
    const clients = Array.from({ length: 20 }, () => {
      const c = new TestBot(h, "t1", bot.keys.clone());
      c.joinState = bot.joinState;
      return c;
    });
    const f = barrierFetch(20);
    const outcomes = await Promise.allSettled(clients.map((c) => c.join({ fetch: f })));
    const ok = outcomes.filter((o) => o.status === "fulfilled");
    const codes = outcomes.flatMap((o) =>
      o.status === "rejected" ? [(o.reason as KeyboundError).code] : []
    );
    assertEquals(ok.length, 1);
    assertEquals(codes, Array(19).fill("UNEXPECTED_BACKEND_STATE"));
    const status = await tokenStatus(h.ctx, "t1");
    assertEquals(status.recovery_count, 2);
    const winner = (ok[0] as PromiseFulfilledResult<{ bot_instance_id: string }>).value;
    assertEquals(status.bound_bot_instance_id, winner.bot_instance_id);
    assertEquals((await listLocks(h.ctx)).length, 0);
    const successes = (await events(h.ctx, "join_token.bound_keypair.recovery"))
      .filter((e) => e.status.success);
    assertEquals(successes.length, 2, "onboarding and the one winner");
    const instances = await h.ctx.backend.list(["resources", "bot_instance", "b1"]);
    assertEquals(instances.length, 2);
  },
);

/** A fetch that remembers the last continue request so a test can send it again. */
function recordingFetch() {
  const state: { last?: { url: string; init: RequestInit } } = {};
  const f: typeof fetch = (input, init) => {
    if (String(input).endsWith("/continue")) state.last = { url: String(input), init: init! };
    return fetch(input, init);
  };
  return { f, state };
}

async function replay(state: { last?: { url: string; init: RequestInit } }) {
  const res = await fetch(state.last!.url, state.last!.init);
  return { status: res.status, json: await res.json() };
}

withHarness("a replayed final continue is SESSION_INVALID and changes nothing", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
  for (const recover of [false, true]) {
    const { f, state } = recordingFetch();
    await bot.join({ fetch: f, recover });
    const token = await getToken(h.ctx, "t1");
    const instances = await h.ctx.backend.list(["resources", "bot_instance"]);
    const r = await replay(state);
    assertEquals([r.status, r.json.error.code], [400, "SESSION_INVALID"]);
    assertEquals(await getToken(h.ctx, "t1"), token);
    assertEquals(await h.ctx.backend.list(["resources", "bot_instance"]), instances);
  }
  assertEquals((await listLocks(h.ctx)).length, 0);
});

withHarness("an expired challenge is refused; the session dies with it", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
  const before = await getToken(h.ctx, "t1");
  const late: typeof fetch = (input, init) => {
    if (String(input).endsWith("/continue")) h.clock.advance(61);
    return fetch(input, init);
  };
  // Unsigned (a recovery): a signed refresh 61 s late already fails the signed request's iat.
  await rejectsCode(() => bot.join({ fetch: late, recover: true }), "SESSION_INVALID", "expired");
  assertEquals(await getToken(h.ctx, "t1"), before);
});

withHarness("a refresh must sign every continue with the same certificate and chash", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  const stripAuth: typeof fetch = (input, init) => {
    if (String(input).endsWith("/continue")) {
      const headers = { ...(init!.headers as Record<string, string>) };
      delete headers.authorization;
      return fetch(input, { ...init, headers });
    }
    return fetch(input, init);
  };
  await rejectsCode(() => bot.join({ fetch: stripAuth }), "UNAUTHENTICATED");
  // A continue signed without chash (or with another challenge's) is refused.
  const noChash: typeof fetch = async (input, init) => {
    if (String(input).endsWith("/continue")) {
      const body = init!.body as string;
      const headers = {
        ...(init!.headers as Record<string, string>),
        authorization: await signRequest(bot.identity!, {
          method: "POST",
          path: new URL(String(input)).pathname,
          body,
        }),
      };
      return fetch(input, { ...init, headers });
    }
    return fetch(input, init);
  };
  await rejectsCode(() => bot.join({ fetch: noChash }), "UNAUTHENTICATED", "chash");
  assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 1);
  assertEquals((await bot.join()).generation, 2);
});

withHarness(
  "continue reports the signature before the session, the binding before the solution",
  async (h) => {
    // The server opens the session while it checks the signature, and checks the
    // solution while it checks the binding; the errors still come in that order.
    const bot = await onboardedBot(h, "t1", { botName: "b1" });
    const rewrite = (
      edit: (body: { session: string; answer: { solution?: string } }) => void,
      resign: boolean,
    ): typeof fetch =>
    async (input, init) => {
      if (!String(input).endsWith("/continue")) return fetch(input, init);
      const body = JSON.parse(init!.body as string);
      edit(body);
      const text = JSON.stringify(body);
      const headers = { ...(init!.headers as Record<string, string>) };
      if (resign) {
        headers.authorization = await signRequest(bot.identity!, {
          method: "POST",
          path: new URL(String(input)).pathname,
          body: text,
          chash: await challengeHash("another challenge"),
        });
      }
      return fetch(input, { ...init, headers, body: text });
    };
    // A forged session under the original signature: the body hash fails first.
    const forged = rewrite((b) => b.session = b.session.slice(0, -8) + "AAAAAAAA", false);
    await rejectsCode(() => bot.join({ fetch: forged }), "UNAUTHENTICATED", "bsh");
    // A wrong chash and a broken solution: the binding fails first.
    const broken = rewrite((b) => b.answer.solution = "x.y.z", true);
    await rejectsCode(() => bot.join({ fetch: broken }), "UNAUTHENTICATED", "chash");
    assertEquals((await bot.join()).generation, 2);
  },
);

withHarness("a refresh begin presents its certificate unsigned; continue is signed", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  const seen: { path: string; signed: boolean; certificate: boolean }[] = [];
  const watching: typeof fetch = (input, init) => {
    const headers = init!.headers as Record<string, string>;
    seen.push({
      path: new URL(String(input)).pathname,
      signed: headers.authorization !== undefined,
      certificate: "certificate" in JSON.parse(init!.body as string),
    });
    return fetch(input, init);
  };
  assertEquals((await bot.join({ fetch: watching })).generation, 2);
  assertEquals(seen, [
    { path: "/v1/join/bound-keypair/begin", signed: false, certificate: true },
    { path: "/v1/join/bound-keypair/continue", signed: true, certificate: false },
  ]);
  // A signed begin (protocol 0.1.0 clients) is refused, and consumes nothing.
  const signedBegin: typeof fetch = async (input, init) => {
    if (String(input).endsWith("/begin")) {
      const body = init!.body as string;
      const headers = {
        ...(init!.headers as Record<string, string>),
        authorization: await signRequest(bot.identity!, {
          method: "POST",
          path: new URL(String(input)).pathname,
          body,
        }),
      };
      return fetch(input, { ...init, headers });
    }
    return fetch(input, init);
  };
  await rejectsCode(() => bot.join({ fetch: signedBegin }), "BAD_REQUEST", "begin is not signed");
  assertEquals((await bot.join()).generation, 3);
});

withHarness("a refresh continue signed by another certificate is refused", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  // Another valid certificate of the same bot instance and generation, with another key.
  const other = await botSigner(h.ctx, "b1", {
    instance: bot.last!.bot_instance_id,
    generation: bot.last!.generation,
  });
  // Re-signs each continue with `signer`, with the chash of the challenge just received.
  let lastChash: string | undefined;
  const resign = (signer: RequestSigner): typeof fetch => async (input, init) => {
    if (String(input).endsWith("/continue")) {
      const body = init!.body as string;
      const headers = {
        ...(init!.headers as Record<string, string>),
        authorization: await signRequest(signer, {
          method: "POST",
          path: new URL(String(input)).pathname,
          body,
          ...(lastChash ? { chash: lastChash } : {}),
        }),
      };
      return fetch(input, { ...init, headers });
    }
    const res = await fetch(input, init);
    const json = await res.clone().json();
    lastChash = json.step?.challenge ? await challengeHash(json.step.challenge) : undefined;
    return res;
  };
  await rejectsCode(
    () => bot.join({ fetch: resign(other) }),
    "UNAUTHENTICATED",
    "another certificate",
  );
  // The same re-signing with the bot's own certificate passes: only the key made the difference.
  assertEquals((await bot.join({ fetch: resign(bot.identity!) })).generation, 2);
});

withHarness(
  "a refresh begin certificate from another CA, or a locked identity, is refused",
  async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1" });
    const foreignCluster = await newCluster();
    const foreign = await botSigner(foreignCluster.ctx, "b1", {
      instance: bot.last!.bot_instance_id,
      generation: bot.last!.generation,
    });
    const copy = new TestBot(h, "t1", bot.keys.clone());
    copy.joinState = bot.joinState;
    copy.identity = foreign;
    await rejectsCode(() => copy.join(), "UNAUTHENTICATED", "user CA");
    // A certificate field that is not PEM is a bad parameter naming the field.
    const subject = await generateKeyPair("ES256");
    const r = await postRaw(
      h,
      "/v1/join/bound-keypair/begin",
      JSON.stringify({
        token_name: "t1",
        public_tls_key: await exportSpkiPem(subject.publicKey),
        public_ssh_key: await toAuthorizedKey(subject.publicKey),
        certificate: "garbage",
      }),
    );
    assertEquals(r.status, 400);
    assertEquals((r.json.error as { details: { path: string } }).details.path, "certificate");
    // A lock on the bot instance stops the refresh at begin, before any challenge.
    await putResource(h.ctx, "lock", {
      kind: "lock",
      version: "v2",
      metadata: { name: "l1" },
      spec: { target: { bot_instance_id: bot.last!.bot_instance_id } },
    });
    await rejectsCode(() => bot.join(), "LOCKED", "bot instance");
    assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 1);
  },
);

withHarness(
  "a lock on the bot user made between begin and continue stops the refresh",
  async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1" });
    const lockBeforeContinue: typeof fetch = async (input, init) => {
      if (String(input).endsWith("/continue")) {
        await putResource(h.ctx, "lock", {
          kind: "lock",
          version: "v2",
          metadata: { name: "l-user" },
          spec: { target: { user: "bot-b1" }, message: "user locked" },
        });
      }
      return fetch(input, init);
    };
    await rejectsCode(() => bot.join({ fetch: lockBeforeContinue }), "LOCKED", "user locked");
    const instance = await h.ctx.backend.get<BotInstance>(
      resourceKey("bot_instance", "b1", bot.last!.bot_instance_id),
    );
    assertEquals(instance!.value.status.latest_authentications?.at(-1)?.generation, 1);
  },
);

withHarness(
  "heartbeats: signed by the bot, history capped at 10 plus the initial one",
  async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1" });
    const send = async (i: number) => {
      const body = JSON.stringify({
        is_startup: i === 0,
        version: "0.1.0",
        hostname: `host-${i}`,
        uptime_seconds: i * 60,
        one_shot: false,
        architecture: "x86_64",
        os: "linux",
      });
      const path = "/v1/bot/heartbeat";
      const res = await fetch(h.baseUrl + path, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: await signRequest(bot.identity!, { method: "POST", path, body }),
        },
        body,
      });
      return { status: res.status, json: await res.json() };
    };
    for (let i = 0; i < 12; i++) assertEquals((await send(i)).status, 200);
    const e = await h.ctx.backend.get<BotInstance>(
      resourceKey("bot_instance", "b1", bot.last!.bot_instance_id),
    );
    const st = e!.value.status;
    assertEquals(st.initial_heartbeat?.hostname, "host-0");
    assertEquals(st.initial_heartbeat?.is_startup, true);
    assertEquals(st.latest_heartbeats.length, 10);
    assertEquals(st.latest_heartbeats[9].hostname, "host-11");
    assertEquals(st.latest_heartbeats[9].uptime, "11m");
    assertEquals(st.latest_heartbeats[9].join_method, "bound_keypair");
    // Heartbeats do not disturb refreshes (the instance changed under the join's read).
    assertEquals((await bot.join()).generation, 2);
    // Unsigned heartbeats are refused.
    const res = await fetch(h.baseUrl + "/v1/bot/heartbeat", { method: "POST", body: "{}" });
    assertEquals(res.status, 401);
    await res.body?.cancel();
  },
);

withHarness("a server restart between joins: refresh and recovery still work", async (h) => {
  const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 3 });
  await bot.join();
  const h2 = await h.restart();
  (h as Harness & { current?: Harness }).current = h2;
  bot.h = h2;
  const r = await bot.join();
  assertEquals(r.generation, 3);
  const rec = await bot.join({ recover: true });
  assertEquals(rec.generation, 1);
  assertEquals((await tokenStatus(h2.ctx, "t1")).recovery_count, 2);
});

withHarness(
  "a join begun on one auth process continues on another sharing the backend",
  async (h) => {
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 3 });
    const other = await attachHarness(h);
    try {
      const crossOver: typeof fetch = (input, init) => {
        const url = String(input);
        return fetch(url.endsWith("/continue") ? url.replace(h.baseUrl, other.baseUrl) : url, init);
      };
      assertEquals((await bot.join({ fetch: crossOver })).generation, 2);
      await bot.join({ fetch: crossOver, recover: true });
      assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 2);
    } finally {
      await other.stop();
    }
  },
);
