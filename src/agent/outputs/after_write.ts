/**
 * The base of outputs that add a step after another output's writes
 * (sharing the files, a reload hook): the wrapped output keeps its name,
 * type, schedule and destination.
 *
 * @module
 */
import type { BotIdentity } from "../identity.ts";
import type { Output } from "./output.ts";

/** An output that runs {@linkcode AfterWrite.afterWrite} after each write of `inner`. */
export abstract class AfterWrite implements Output {
  readonly name: string;
  readonly type: string;
  readonly renewalInterval?: number;
  /** The output that writes the files. */
  protected readonly inner: Output;

  /** @param inner the output that writes the files */
  constructor(inner: Output) {
    this.inner = inner;
    this.name = inner.name;
    this.type = inner.type;
    this.renewalInterval = inner.renewalInterval;
  }

  describe(): string {
    return this.inner.describe();
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  async write(identity: BotIdentity): Promise<void> {
    await this.inner.write(identity);
    await this.afterWrite();
  }

  /** The added step. */
  protected abstract afterWrite(): Promise<void>;
}
