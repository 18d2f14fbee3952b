/**
 * `tbot wait --diag-addr ADDR [--service NAME] [--timeout D]`: polls the
 * diagnostics `/readyz` (or `/readyz/NAME`) until it answers 200, for
 * scripts that start tbot in the background and must wait for credentials.
 *
 * @module
 */
import type { Clock } from "../../agent/clock.ts";
import { errorMessage, KeyboundError } from "../../errors.ts";
import { UsageError } from "../flags/mod.ts";
import { parseDuration } from "../../util/duration.ts";
import type { TbotFlags } from "./flags.ts";

/** Time between polls. */
export const WAIT_POLL_MS = 250;

/**
 * Polls until ready. Resolves when ready; throws a `KeyboundError` on
 * timeout naming the last status seen.
 */
export async function runWait(
  f: TbotFlags,
  clock: Clock,
  fetchFn: typeof fetch = fetch,
): Promise<void> {
  if (!f.diagAddr) throw new UsageError("--diag-addr is required");
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(f.timeout ?? "1m");
  } catch {
    throw new UsageError(`--timeout: invalid duration "${f.timeout}" (examples: 30s, 2m)`);
  }
  const path = f.service ? `/readyz/${encodeURIComponent(f.service)}` : "/readyz";
  const url = `http://${f.diagAddr}${path}`;
  const deadline = clock.now().getTime() + timeoutMs;
  let last = "no answer";
  for (;;) {
    try {
      const res = await fetchFn(url, { signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.status === 200) return;
      if (res.status === 404) {
        throw new KeyboundError("NOT_FOUND", `${url}: ${body.trim() || "not found"}`);
      }
      last = `HTTP ${res.status}`;
    } catch (e) {
      if (e instanceof KeyboundError) throw e;
      last = errorMessage(e);
    }
    if (clock.now().getTime() >= deadline) {
      throw new KeyboundError(
        "CONNECTION_FAILED",
        `tbot at ${f.diagAddr} was not ready within ${f.timeout ?? "1m"} (last: ${last})`,
      );
    }
    await clock.sleep(WAIT_POLL_MS);
  }
}
