/**
 * Bench Worker (`tests/workers/do_renewal_bench.ts`): the real bot Worker,
 * whose Durable Object also measures the floor of a renewal — the work no
 * implementation of the protocol can skip, done with the same primitives
 * the agent uses and the sizes of the bot's own last renewal, without any
 * of the protocol logic around it:
 *
 * - `floorCrypto`: the new subject key (P-256 generation, PKCS#8 export,
 *   non-extractable re-import), its SPKI export (the join sends it), the
 *   request signature (ES256) and the challenge solution (the bound key's
 *   algorithm), the body and challenge hashes;
 * - `floorStorage`: the sealed pending-join record written before
 *   `continue` (its own commit), the sealed group write of the renewal's
 *   files that also deletes it (one commit), and the alarm re-armed for the
 *   next renewal;
 * - `floorFetch`: the two round trips (`begin`, `continue`) with bodies and
 *   headers of the real sizes to a loopback echo, each answer read and
 *   JSON-parsed; through the `ECHO` service binding when the bench binds one,
 *   as the bot reaches the auth service through its `AUTH` binding there
 *   (`floorFetchGlobal`: the same with the global `fetch`, which miniflare
 *   routes through a JavaScript Worker of its own).
 *
 * `floor` does all of it in one call, in a renewal's order: the pending
 * record is committed before `continue` leaves (workerd's output gate), so
 * a renewal makes two storage commits. Only the renewal (`renew`,
 * inherited) is the product; this class adds methods beside it so both run
 * in one object, one workerd, one run.
 *
 * @module
 */
import { sha256 } from "../../src/crypto/random.ts";
import { exportSpki, generateKeyPair, type KeyAlgorithm, sign } from "../../src/crypto/keys.ts";
import { parseKek, SealedStorage } from "../../src/agent/sealed_keys.ts";
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { generateStoredKeyPair } from "../../src/agent/stored_keys.ts";
import { silentLogger } from "../../src/util/log.ts";
import { fromUtf8, utf8 } from "../../src/util/encoding.ts";
import { BotIdentity } from "../../runtime-adapters/workers/bot_identity_do.ts";
import { DoAgentStorage } from "../../runtime-adapters/workers/do_agent_storage.ts";
import { DurableObject } from "../../runtime-adapters/workers/durable_object.ts";

export { default } from "../../runtime-adapters/workers/bot_worker.ts";

/** Sizes of a refresh join's messages in the bench (bytes; measured on this protocol version). */
export const JOIN_SIZES = {
  beginRequest: 1_900,
  beginAnswer: 2_800,
  continueRequest: 2_850,
  /** The `authorization` header of `continue` (a JWS carrying the certificate). */
  continueAuthorization: 1_550,
  continueAnswer: 4_850,
  /** The pending-join record before sealing (mostly the sealed session). */
  pendingRecord: 2_900,
} as const;

const CHALLENGE = "c".repeat(500);
const BEGIN_BODY = JSON.stringify({ b: "b".repeat(JOIN_SIZES.beginRequest - 8) });
const CONTINUE_BODY = JSON.stringify({ b: "b".repeat(JOIN_SIZES.continueRequest - 8) });
const AUTHORIZATION = `Keybound ${"a".repeat(JOIN_SIZES.continueAuthorization - 9)}`;

interface FloorState {
  storage: SealedStorage;
  files: Record<string, string>;
  certKey: CryptoKey;
  boundKey: CryptoKey;
}

/** The bot, plus the floor of its renewal. */
export class BenchBot extends BotIdentity {
  #floor: FloorState | null = null;

  /** Reads the bot's last renewal's files (their sizes) and makes the floor's keys. */
  async #state(): Promise<FloorState> {
    if (this.#floor) return this.#floor;
    const kek = await parseKek(this.env.TBOT_STORAGE_KEK!, "TBOT_STORAGE_KEK");
    const context = `bot-object:${this.ctx.id.toString()}\u0000token:${this.env.TBOT_TOKEN}`;
    const own = new SealedStorage(new DoAgentStorage(this.ctx.storage), {
      kek,
      context,
      log: silentLogger,
    });
    const files: Record<string, string> = {};
    for (const name of await own.list()) {
      if (name === STORAGE_FILES.boundKey || name === STORAGE_FILES.keyHistory) continue;
      if (name === STORAGE_FILES.boundPublicKey) continue;
      files[name] = fromUtf8((await own.read(name))!);
    }
    const bound = fromUtf8((await own.read(STORAGE_FILES.boundPublicKey))!);
    const boundAlg: KeyAlgorithm = bound.startsWith("ssh-ed25519") ? "EdDSA" : "ES256";
    this.#floor = {
      storage: new SealedStorage(new DoAgentStorage(this.ctx.storage, "floor/"), {
        kek,
        context,
        log: silentLogger,
      }),
      files,
      certKey: (await generateKeyPair("ES256")).privateKey,
      boundKey: (await generateKeyPair(boundAlg)).privateKey,
    };
    return this.#floor;
  }

  /** The new subject key: generation, PKCS#8 export, re-import, SPKI export (the join sends it). */
  async #subjectKey(s: FloorState): Promise<void> {
    const subject = await generateStoredKeyPair(s.storage, "ES256");
    await exportSpki(subject.publicKey);
  }

  /** The challenge solution: its hash (`chash`) and the bound key's signature. */
  async #solveChallenge(s: FloorState): Promise<void> {
    await sha256(CHALLENGE);
    await sign(s.boundKey, utf8(CHALLENGE));
  }

  /** The signature of the `continue` request: its body hash and the certificate key's signature. */
  async #signRequest(s: FloorState): Promise<void> {
    await sha256(CONTINUE_BODY);
    await sign(s.certKey, utf8("r".repeat(JOIN_SIZES.continueAuthorization)));
  }

  /** One round trip to `echoUrl` (which answers `?n=` bytes of JSON), its answer parsed. */
  async #trip(
    echoUrl: string,
    body: string,
    answer: number,
    authorization?: string,
    global = false,
  ) {
    const echo = (this.env as { ECHO?: { fetch: typeof fetch } }).ECHO;
    // Called unbound either way: workerd rejects a fetch called as another object's method.
    const send: typeof fetch = echo && !global
      ? (input, init) => echo.fetch(input, init)
      : (input, init) => fetch(input, init);
    const res = await send(`${echoUrl}?n=${answer}`, {
      method: "POST",
      headers: {
        accept: "application/json",
        "content-type": "application/json",
        ...(authorization ? { authorization } : {}),
      },
      body,
    });
    JSON.parse(await res.text());
  }

  #begin(echoUrl: string, global = false): Promise<void> {
    return this.#trip(echoUrl, BEGIN_BODY, JOIN_SIZES.beginAnswer, undefined, global);
  }

  #continue(echoUrl: string, global = false): Promise<void> {
    return this.#trip(echoUrl, CONTINUE_BODY, JOIN_SIZES.continueAnswer, AUTHORIZATION, global);
  }

  #writePending(s: FloorState): Promise<void> {
    return s.storage.write(STORAGE_FILES.pendingJoin, "p".repeat(JOIN_SIZES.pendingRecord));
  }

  /** The group write of the renewal's files (removing the pending record), then the next alarm. */
  async #storeResult(s: FloorState): Promise<void> {
    await s.storage.writeGroup!({ ...s.files, [STORAGE_FILES.pendingJoin]: null });
    await this.ctx.storage.setAlarm(Date.now() + 3_600_000 + Math.floor(Math.random() * 1000));
  }

  /** The cryptography of one refresh renewal, alone. */
  async floorCrypto(): Promise<void> {
    const s = await this.#state();
    await this.#subjectKey(s);
    await this.#solveChallenge(s);
    await this.#signRequest(s);
  }

  /** The storage writes of one renewal, alone: two commits, as the renewal makes them. */
  async floorStorage(): Promise<void> {
    const s = await this.#state();
    await this.#writePending(s);
    // In a renewal the record is durable before `continue` leaves (the output gate).
    await this.ctx.storage.sync();
    await this.#storeResult(s);
  }

  /** The two round trips of a refresh join, alone. */
  async floorFetch(echoUrl: string): Promise<void> {
    await this.#begin(echoUrl);
    await this.#continue(echoUrl);
  }

  /** The same two round trips through the global `fetch` (miniflare's interceptor Worker). */
  async floorFetchGlobal(echoUrl: string): Promise<void> {
    await this.#begin(echoUrl, true);
    await this.#continue(echoUrl, true);
  }

  /**
   * An RPC that does nothing: the harness's own share of every call
   * (miniflare's proxy, the RPC), which the bench subtracts. `readiness`
   * served for that until session 5, but it reads the alarm and builds its
   * answer: about 0.2 ms more, which made every net figure that much low.
   */
  ping(): Promise<void> {
    return Promise.resolve();
  }

  /** All of the floor in one call, in a renewal's order (compare with one `renew`). */
  async floor(echoUrl: string): Promise<void> {
    const s = await this.#state();
    await this.#subjectKey(s);
    await this.#begin(echoUrl);
    await this.#solveChallenge(s);
    await this.#writePending(s);
    await this.#signRequest(s);
    await this.#continue(echoUrl);
    await this.#storeResult(s);
  }
}

/**
 * An object that does nothing (do_cold_renewal_bench.ts): the first RPC to it
 * in a fresh workerd is the harness's and the platform's share of a first
 * call (miniflare's proxy Worker, creating an object), with none of the bot.
 */
export class EmptyObject extends DurableObject<unknown> {
  /** Does nothing. */
  ping(): Promise<void> {
    return Promise.resolve();
  }
}
