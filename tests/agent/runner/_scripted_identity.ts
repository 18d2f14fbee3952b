/**
 * An identity source for runner tests whose joins succeed or fail on
 * command, with a gate to hold joins in flight. Runtime-free, so the same
 * script runs in Deno and inside workerd.
 *
 * @module
 */
import type { BotIdentity } from "../../../src/agent/identity.ts";
import type { IdentitySource } from "../../../src/agent/runner/mod.ts";
import { type ErrorCode, KeyboundError } from "../../../src/errors.ts";

/** Joins on command; `failWith` makes every join fail with that code. */
export class ScriptedIdentity implements IdentitySource {
  identity: BotIdentity | null = null;
  /** Joins attempted. */
  joins = 0;
  /** Joins in flight. */
  inFlight = 0;
  /** Most joins in flight at once. */
  maxInFlight = 0;
  /** Error code for the next joins, or null to succeed. */
  failWith: ErrorCode | null = null;
  #now: () => number;
  #gate: Promise<void> | null = null;
  #open: (() => void) | null = null;

  /** @param now the runner's clock, epoch ms */
  constructor(now: () => number) {
    this.#now = now;
  }

  /** Gives the bot a stored identity of generation `generation`, valid for an hour. */
  store(generation: number): void {
    this.identity = fakeIdentity(generation, this.#now());
  }

  /** Holds joins until {@linkcode release}. */
  hold(): void {
    this.#gate = new Promise((r) => this.#open = r);
  }

  /** Lets held joins finish. */
  release(): void {
    this.#open?.();
    this.#gate = null;
  }

  hasValidIdentity(): boolean {
    return this.identity !== null && this.identity.notAfter.getTime() > this.#now();
  }

  async renew(): Promise<BotIdentity> {
    this.joins++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      // A real join does I/O; so does this one, before any gate.
      await new Promise((r) => setTimeout(r, 0));
      if (this.#gate) await this.#gate;
      if (this.failWith) throw new KeyboundError(this.failWith, "down");
      this.identity = fakeIdentity((this.identity?.generation ?? 0) + 1, this.#now());
      return this.identity;
    } finally {
      this.inFlight--;
    }
  }
}

function fakeIdentity(generation: number, now: number): BotIdentity {
  return {
    botName: "suite",
    botInstanceId: "00000000-0000-4000-8000-000000000001",
    generation,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  } as BotIdentity;
}
