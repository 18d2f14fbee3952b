/**
 * Memory of the auth service under a `begin` flood (issue #8): RSS of a real
 * `auth start` process, run with the heap budget the `auth` task and the
 * compiled binary use, before and after 20,000 valid unauthenticated
 * `begin`s for a real token (each answered with a challenge, nothing
 * stored), 16 in flight. Target: RSS after the flood at most
 * {@linkcode FLOOD_RSS_TARGET_MB}.
 *
 * @module
 */
import { exportSpkiPem } from "../src/crypto/keys.ts";
import { toAuthorizedKey } from "../src/crypto/ssh_wire.ts";
import { JOIN_BEGIN_PATH } from "../src/protocol/messages.ts";
import { onboardBots, startAuth } from "./join.ts";
import { AUTH_V8_FLAGS } from "../runtime-adapters/deno/auth_process.ts";
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt, rssMb, runConcurrent } from "./stats.ts";

/** RSS after the flood must stay at or below this, MB (86 → 219 MB before the budget). */
export const FLOOD_RSS_TARGET_MB = 160;

/** The flood section; `begins` defaults to 20,000. */
export function floodSection(begins = 20_000): BenchSection {
  return {
    id: "flood",
    title: `auth RSS under ${begins} valid begins`,
    async run(run) {
      const auth = await startAuth(`${run.workDir}/flood`);
      try {
        const [bot] = await onboardBots(auth, 1);
        const body = JSON.stringify({
          token_name: bot.token,
          public_tls_key: await exportSpkiPem(bot.subjectKey.publicKey),
          public_ssh_key: await toAuthorizedKey(bot.subjectKey.publicKey),
        });
        const before = rssMb(auth.pid);
        run.log(`flood: ${begins} begins`);
        await runConcurrent(begins, 16, async () => {
          const res = await fetch(auth.url + JOIN_BEGIN_PATH, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          });
          await res.body?.cancel();
          if (res.status !== 200) throw new Error(`begin answered ${res.status}`);
        });
        const after = rssMb(auth.pid);
        const rows: BenchRow[] = [
          { metric: "auth RSS before", value: fmt(before, 0), unit: "MB" },
          {
            metric: "auth RSS after the flood",
            value: fmt(after, 0),
            unit: "MB",
            verdict: after <= FLOOD_RSS_TARGET_MB ? "PASS" : "MISS",
            note: `target <= ${FLOOD_RSS_TARGET_MB} MB (${AUTH_V8_FLAGS})`,
          },
        ];
        return rows;
      } finally {
        await auth.stop();
      }
    },
  };
}
