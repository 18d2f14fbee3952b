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
 *   JSON-parsed.
 *
 * Only the renewal (`renew`, inherited) is the product; this class adds
 * methods beside it so both run in one object, one workerd, one run.
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

  /** The cryptography of one refresh renewal. */
  async floorCrypto(): Promise<void> {
    const s = await this.#state();
    const subject = await generateStoredKeyPair(s.storage, "ES256");
    await exportSpki(subject.publicKey);
    const body = utf8("b".repeat(JOIN_SIZES.continueRequest));
    await sha256(body);
    await sha256("c".repeat(500));
    await sign(s.boundKey, utf8("s".repeat(700)));
    await sign(s.certKey, utf8("r".repeat(JOIN_SIZES.continueAuthorization)));
  }

  /** The storage writes of one renewal: the pending record, the group write, the alarm. */
  async floorStorage(): Promise<void> {
    const s = await this.#state();
    await s.storage.write(STORAGE_FILES.pendingJoin, "p".repeat(JOIN_SIZES.pendingRecord));
    await s.storage.writeGroup!({ ...s.files, [STORAGE_FILES.pendingJoin]: null });
    await this.ctx.storage.setAlarm(Date.now() + 3_600_000 + Math.floor(Math.random() * 1000));
  }

  /** The two round trips of a refresh join, to `echoUrl` (answers `?n=` bytes of JSON). */
  async floorFetch(echoUrl: string): Promise<void> {
    const trip = async (body: number, answer: number, authorization?: string) => {
      const res = await fetch(`${echoUrl}?n=${answer}`, {
        method: "POST",
        headers: {
          accept: "application/json",
          "content-type": "application/json",
          ...(authorization ? { authorization } : {}),
        },
        body: JSON.stringify({ b: "b".repeat(body - 8) }),
      });
      JSON.parse(await res.text());
    };
    await trip(JOIN_SIZES.beginRequest, JOIN_SIZES.beginAnswer);
    await trip(
      JOIN_SIZES.continueRequest,
      JOIN_SIZES.continueAnswer,
      `Keybound ${"a".repeat(JOIN_SIZES.continueAuthorization - 9)}`,
    );
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

  /** All of the floor, in one call (compare with one `renew`). */
  async floor(echoUrl: string): Promise<void> {
    await this.floorCrypto();
    await this.floorStorage();
    await this.floorFetch(echoUrl);
  }
}
