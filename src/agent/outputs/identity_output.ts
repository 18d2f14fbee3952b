/**
 * The `identity` output: the bot's key and certificates for tsh, tctl and
 * OpenSSH, in the files Teleport writes (`key`, `key.pub`, `key-cert.pub`,
 * `tlscert`, `tlscacerts`, `sshcacerts`).
 *
 * @module
 */
import { identityFiles } from "../identity.ts";
import type { BotIdentity } from "../identity.ts";
import { allInOrder } from "../../util/all_in_order.ts";
import { type AgentStorage, STORAGE_FILES, writeText } from "../storage.ts";
import type { Output } from "./output.ts";

/** Writes the identity files into a destination. */
export class IdentityOutput implements Output {
  readonly type = "identity";
  readonly name: string;
  #destination: AgentStorage;

  /**
   * Writes into `destination` under service name `name`.
   *
   * @param name service name
   * @param destination where the files go
   */
  constructor(name: string, destination: AgentStorage) {
    this.name = name;
    this.#destination = destination;
  }

  describe(): string {
    return this.#destination.describe();
  }

  init(): Promise<void> {
    return this.#destination.init();
  }

  async write(identity: BotIdentity): Promise<void> {
    // The certificate goes last so a reader that sees the new certificate also finds its key;
    // the others at once (their fsyncs overlap).
    const { [STORAGE_FILES.tlsCert]: cert, ...rest } = identityFiles(identity);
    await allInOrder(
      Object.entries(rest).map(([name, text]) => writeText(this.#destination, name, text)),
    );
    await writeText(this.#destination, STORAGE_FILES.tlsCert, cert);
  }
}
