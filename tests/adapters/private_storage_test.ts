/**
 * Private storage stays private: every file and directory the storage
 * adapters create is 0600/0700 even under umask 000 — the auth service's
 * `--data-dir` (Deno KV file with its `-wal`/`-shm`, admin identity, server
 * address), tbot's `deno_kv` storage and its `directory` storage. Real
 * processes, started through `sh -c 'umask 000; exec …'`.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { runTbot, spawnTbot } from "../tbot/_harness.ts";
import { servedBot } from "../tbot/_served_bot.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";

const AUTH_ENTRY = new URL("../../runtime-adapters/deno/entry/auth.ts", import.meta.url).pathname;
const UMASK_000 = ["sh", "-c", 'umask 000; exec "$0" "$@"'];

/** Every path under `root` (itself included) with its permission bits. */
async function modes(root: string): Promise<Map<string, { dir: boolean; mode: number }>> {
  const out = new Map<string, { dir: boolean; mode: number }>();
  const walk = async (path: string) => {
    const st = await Deno.lstat(path);
    out.set(path, { dir: st.isDirectory, mode: st.mode! & 0o777 });
    if (st.isDirectory) {
      for await (const e of Deno.readDir(path)) {
        await walk(`${path}/${e.name}`);
      }
    }
  };
  await walk(root);
  return out;
}

/** Asserts 0700 directories and 0600 files under `root`; returns the names seen. */
async function assertPrivate(root: string): Promise<string[]> {
  const found = await modes(root);
  for (const [path, { dir, mode }] of found) {
    assertEquals(mode.toString(8), dir ? "700" : "600", `${path} (${dir ? "directory" : "file"})`);
  }
  return [...found.keys()].map((p) => p.slice(root.length + 1)).filter((p) => p);
}

Deno.test({
  name: "umask 000: the auth service's data dir, KV file and its -wal/-shm are 0700/0600",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "keybound-umask-" });
    const dataDir = `${dir}/data`;
    const auth = await spawnAuthService({
      dataDir,
      args: ["--insecure-no-tls"],
      command: [...UMASK_000, Deno.execPath(), "run", "--unstable-kv", "-A", AUTH_ENTRY],
    });
    try {
      const names = await assertPrivate(dataDir);
      for (const name of ["keybound.kv", "keybound.kv-wal", "keybound.kv-shm", "admin-identity"]) {
        assert(names.includes(name), `${name} exists (found: ${names.join(", ")})`);
      }
    } finally {
      assertEquals(await auth.stop(), 0);
    }
    await assertPrivate(dataDir);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "umask 000: tbot's deno_kv storage (file, -wal, -shm, new directory) is 0600/0700",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using bot = await servedBot("keybound-umask-");
    const state = `${bot.dir}/state`;
    await bot.writeConfig({
      storage: `${state}/bot.kv`,
      storageType: "deno_kv",
      extra: "diag_addr: 127.0.0.1:0",
    });
    const d = spawnTbot(["start", "-c", bot.config], {}, { umask: "000" });
    try {
      await d.waitForLog(/diagnostics listening/);
      await d.waitForLog(/joined the cluster/);
      const names = await assertPrivate(state);
      for (const name of ["bot.kv", "bot.kv-wal", "bot.kv-shm"]) {
        assert(names.includes(name), `${name} exists (found: ${names.join(", ")})`);
      }
      d.kill("SIGTERM");
      assertEquals(await d.exited(), 0, d.log());
      await assertPrivate(state);
    } finally {
      try {
        d.kill("SIGKILL");
      } catch { /* already gone */ }
      await d.exited();
    }
  },
});

Deno.test({
  name: "umask 000: tbot's directory storage (directory, keys, lock, state) is 0700/0600",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using bot = await servedBot("keybound-umask-");
    const dir = bot.dir;
    await bot.writeConfig({ storage: `${dir}/bot`, output: `${dir}/out` });
    const r = await runTbot(["start", "-c", bot.config, "--oneshot"], {}, { umask: "000" });
    assertEquals(r.code, 0, r.stderr);
    const names = await assertPrivate(`${dir}/bot`);
    assert(names.includes("id_bkp"), `id_bkp exists (found: ${names.join(", ")})`);
    assert(names.includes("lock"), `lock exists (found: ${names.join(", ")})`);
    const out = await assertPrivate(`${dir}/out`);
    assert(out.includes("tlscert") && out.includes("key"), `identity output: ${out.join(", ")}`);
  },
});
