/**
 * A runner's outputs: preparing them before the first write, and the job
 * that writes one with the bot's identity.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import type { Output } from "../outputs/output.ts";
import type { HealthReporter } from "../readiness.ts";
import { Job, type JobContext } from "./job.ts";
import { errorText, OUTPUT_ATTEMPTS } from "./policy.ts";
import type { SignedCall } from "./signed_call.ts";

/** Prepares every output (`init`); `STORAGE_ERROR` naming the first that cannot be. */
export async function initOutputs(outputs: readonly Output[]): Promise<void> {
  for (const out of outputs) {
    try {
      await out.init();
    } catch (cause) {
      throw new KeyboundError(
        "STORAGE_ERROR",
        `output "${out.name}" (${out.describe()}) cannot be prepared: ${errorText(cause)}`,
        { cause },
      );
    }
  }
}

/**
 * The job that writes `out`: after each renewal, or on the output's own
 * `renewalInterval` if it has one.
 */
export function outputJob(
  out: Output,
  signedCall: SignedCall,
  health: HealthReporter,
  ctx: JobContext,
): Job {
  return new Job({
    service: out.name,
    name: "output-write",
    attempts: OUTPUT_ATTEMPTS,
    ...(out.renewalInterval === undefined ? {} : { interval: out.renewalInterval }),
    health,
    task: () => signedCall("renew the output", (identity) => out.write(identity)),
  }, ctx);
}
