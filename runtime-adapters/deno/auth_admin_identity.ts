/**
 * `deno task auth admin-identity --data-dir DIR`: the break-glass on the auth
 * host. With direct access to the cluster's storage it writes a fresh admin
 * identity to DIR/admin-identity and lifts any lock that matches the admin,
 * audited (see src/server/admin_recovery.ts). Safe to run while the auth
 * service is up: every process sharing the storage sees the lifted locks on
 * its next lock check.
 *
 * @module
 */
import { join } from "node:path";
import denoJson from "../../deno.json" with { type: "json" };
import { AUTH, type AuthAdminIdentityConfig } from "../../src/cli/auth/command_line.ts";
import { errorLineOf } from "../../src/cli/error_line.ts";
import { ADMIN_IDENTITY_FILE, KV_FILE } from "../../src/cli/auth/data_dir.ts";
import { ConfigError } from "../../src/errors.ts";
import { loadExistingCluster, recoverAdmin } from "../../src/server/admin_recovery.ts";
import { createLogger } from "../../src/util/log.ts";
import { openStorage, parseStorageFlags } from "./auth_storage.ts";
import { writeFileAtomic } from "./fs.ts";
import { checkDataDir, checkStorageFile, takeDataDir } from "./data_dir_checks.ts";

/** Runs the break-glass; returns the exit code. */
export async function adminIdentity(config: AuthAdminIdentityConfig): Promise<number> {
  try {
    // The same checks as a start's (review-front3 S3): this writes an admin
    // credential into the data directory and opens the CA keys' file.
    const dataDir = checkDataDir(config.dataDir, false);
    const given = parseStorageFlags(config.storage, config.storagePasswordFile, config.dataDir);
    const storage = given.kind !== "kv"
      ? given
      : given.path === join(config.dataDir, KV_FILE)
      ? { kind: "kv" as const, path: join(dataDir, KV_FILE) }
      : { kind: "kv" as const, path: checkStorageFile(given.path) };
    if (storage.kind === "kv" && !(await exists(storage.path))) {
      throw new ConfigError(`no cluster state at ${storage.path} (check --data-dir and --storage)`);
    }
    // Made or taken as a start does, before anything is opened or written: a
    // data directory another user made at the name while the cluster was
    // open got the fresh admin identity (review-front4 M1), and a missing one
    // failed the write after the recovery was committed (S1).
    await takeDataDir(config.dataDir, dataDir, false);
    const backend = await openStorage(storage);
    try {
      const ctx = await loadExistingCluster(backend, {
        log: createLogger({ component: "auth" }),
        version: denoJson.version,
      });
      const { identityFile, liftedLocks } = await recoverAdmin(ctx);
      const path = join(dataDir, ADMIN_IDENTITY_FILE);
      await writeFileAtomic(path, identityFile, { mode: 0o600 });
      console.log(`wrote a fresh admin identity to ${path}`);
      console.log(
        liftedLocks.length === 0
          ? "no lock targeted the admin"
          : `lifted ${liftedLocks.length} lock(s) targeting the admin: ${liftedLocks.join(", ")}`,
      );
      return 0;
    } finally {
      await backend.close();
    }
  } catch (err) {
    console.error(errorLineOf(AUTH.name, err));
    return 1;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
