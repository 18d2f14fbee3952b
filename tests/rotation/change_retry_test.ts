/**
 * Review R4: what an auth instance does after a CA change (swap its TLS
 * certificate, rewrite the admin identity) is retried at the next watcher
 * tick when it fails, instead of being forgotten until the next change. A
 * real auth process whose admin identity cannot be rewritten (a directory
 * stands where the file goes: the write fails even for root) keeps trying,
 * and writes it once the obstacle is gone; tctl then works with it.
 *
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { tctl } from "../tctl/_harness.ts";
import { startRotationAuth } from "./_auth.ts";

const FAILED = "CA watcher tick failed";

Deno.test("CA change: a failed admin identity rewrite is retried at the next tick until it succeeds", async () => {
  await using auth = await startRotationAuth();
  const path = `${auth.dataDir}/admin-identity`;
  // tctl keeps working from a copy while the real file is blocked.
  const copy = `${auth.dataDir}/../admin-copy`;
  await Deno.copyFile(path, copy);
  const run = (...args: string[]) => tctl([...args, "--auth-server", auth.proc.addr, "-i", copy]);
  await Deno.remove(path);
  await Deno.mkdir(`${path}/blocked`, { recursive: true });

  const rotated = await run("auth", "rotate", "--type=user", "--manual", "--phase=init");
  assertEquals(rotated.code, 0, rotated.stderr);
  const failures = () => auth.proc.log().split("\n").filter((l) => l.includes(FAILED));
  // Each tick (about one a second) tries again; before the fix only the first one did.
  await waitUntil(() => failures().length >= 3, "three failed ticks", { timeoutMs: 60_000 })
    .catch(() => {
      throw new Error(`the rewrite was not retried:\n${auth.proc.log()}`);
    });

  await Deno.remove(path, { recursive: true });
  await waitUntil(
    async () => {
      try {
        return (await Deno.stat(path)).isFile;
      } catch {
        return false;
      }
    },
    "the admin identity rewritten",
    { timeoutMs: 60_000 },
  ).catch(() => {
    throw new Error(`the admin identity was never rewritten:\n${auth.proc.log()}`);
  });
  const status = await tctl(["status", "--auth-server", auth.proc.addr, "-i", path]);
  assertEquals(status.code, 0, status.stderr);
});
