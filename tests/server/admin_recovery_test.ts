/**
 * Issue #8 item 4: the admin cannot lock itself out. A lock targeting the
 * admin is refused with a clear error; a lock that matches the admin anyway
 * (written straight into storage, as by an older version) is lifted by the
 * break-glass `auth admin-identity --data-dir DIR`, which also writes a fresh
 * admin identity and records both in the audit log.
 *
 * @module
 */
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { LOCKS_CHANGED_KEY, resourceKey } from "../../src/server/keys.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { startAuth, tctl } from "../tctl/_harness.ts";

const AUTH_ENTRY = new URL("../../runtime-adapters/deno/entry/auth.ts", import.meta.url).pathname;

async function breakGlass(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", AUTH_ENTRY, "admin-identity", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("an admin lock is refused; break-glass lifts a stored one and re-issues the identity", async () => {
  const auth = await startAuth();
  const conn = ["--auth-server", auth.address, "-i", auth.identity];
  try {
    const refused = await tctl(["lock", "--user", "admin", "--message", "oops", ...conn]);
    assert(refused.code !== 0, "tctl lock --user admin was accepted");
    assertStringIncludes(refused.stderr, "may not target the admin identity");
    const locks = await tctl(["get", "locks", "--format", "json", ...conn]);
    assertEquals(locks.code, 0, locks.stderr);
    assertEquals(JSON.parse(locks.stdout), [], "nothing was stored");

    // A lock matching the admin that reached storage another way.
    const kv = await DenoKvBackend.open(`${auth.dataDir}/keybound.kv`);
    try {
      const lock = {
        kind: "lock",
        version: "v2",
        metadata: { name: "legacy-admin-lock" },
        spec: { target: { user: "admin" }, message: "from an older version" },
      };
      const r = await kv.commit({
        checks: [],
        mutations: [
          { type: "set", key: resourceKey("lock", "legacy-admin-lock"), value: lock },
          { type: "set", key: LOCKS_CHANGED_KEY, value: { at: new Date().toISOString() } },
        ],
      });
      assert(r.ok);
    } finally {
      await kv.close();
    }
    const locked = await tctl(["get", "locks", ...conn]);
    assert(locked.code !== 0);
    assertStringIncludes(locked.stderr, "LOCKED");

    const wrongDir = await breakGlass(["--data-dir", `${auth.workDir}/nothing-here`]);
    assertEquals(wrongDir.code, 1);
    assertStringIncludes(wrongDir.stderr, "no cluster state");

    const before = await Deno.readTextFile(auth.identity);
    const fixed = await breakGlass(["--data-dir", auth.dataDir]);
    assertEquals(fixed.code, 0, fixed.stderr);
    assertStringIncludes(fixed.stdout, "lifted 1 lock(s) targeting the admin: legacy-admin-lock");
    assert((await Deno.readTextFile(auth.identity)) !== before, "a fresh identity was written");
    assertEquals((await Deno.stat(auth.identity)).mode! & 0o777, 0o600);

    // The running service sees the lift at once; the admin is back.
    const after = await tctl(["get", "locks", "--format", "json", ...conn]);
    assertEquals(after.code, 0, after.stderr);
    assertEquals(JSON.parse(after.stdout), []);
    const audit = await tctl(["audit", "ls", "--type", "cert.create", "--format", "json", ...conn]);
    assertEquals(audit.code, 0, audit.stderr);
    const [event] = JSON.parse(audit.stdout);
    assertEquals([event.break_glass, event.lifted_locks], [true, ["legacy-admin-lock"]]);
    const deleted = await tctl([
      "audit",
      "ls",
      "--type",
      "resource.deleted",
      "--format",
      "json",
      ...conn,
    ]);
    assertEquals(JSON.parse(deleted.stdout)[0].user, "break-glass");
  } finally {
    await auth.stop();
  }
});
