/**
 * The auth service's `--storage`: absent or a path = Deno KV (the embedded
 * default, in `--data-dir` when absent); `postgres://USER@HOST:PORT/DB?sslmode=…`
 * = the shared PostgreSQL backend for several instances. The PostgreSQL
 * password comes from `--storage-password-file` or `PGPASSWORD`, never from
 * the URL, and is never logged.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { KV_FILE } from "../../src/cli/auth/data_dir.ts";
import { ConfigError } from "../../src/errors.ts";
import type { Backend } from "../../src/storage/backend.ts";
import type { Logger } from "../../src/util/log.ts";
import { DenoKvBackend } from "./kv_backend.ts";
import { envReader, guardNodeEnv } from "./permissions.ts";
import { decidingEnv } from "../../src/cli/env.ts";
import { PostgresBackend } from "./postgres/backend.ts";
import { isPostgresUrl, parsePostgresUrl, type PostgresLocation } from "./postgres/url.ts";

/** Where the auth service keeps its cluster state. */
export type StorageConfig =
  | { kind: "kv"; path: string }
  | { kind: "postgres"; location: PostgresLocation; passwordFile?: string };

/**
 * Parses `--storage` and `--storage-password-file`; throws `ConfigError`
 * naming the flag.
 */
export function parseStorageFlags(
  storage: string | undefined,
  passwordFile: string | undefined,
  dataDir: string,
): StorageConfig {
  if (storage !== undefined && isPostgresUrl(storage)) {
    return {
      kind: "postgres",
      location: parsePostgresUrl(storage, "--storage"),
      ...(passwordFile !== undefined ? { passwordFile } : {}),
    };
  }
  if (passwordFile !== undefined) {
    throw new ConfigError("--storage-password-file needs --storage postgres://…");
  }
  if (storage !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(storage)) {
    throw new ConfigError(
      `--storage: unsupported URL scheme in "${storage.split("://")[0]}://" ` +
        "(expected postgres:// or a file path)",
    );
  }
  if (storage === "") throw new ConfigError("--storage: empty value");
  return { kind: "kv", path: storage ?? join(dataDir, KV_FILE) };
}

async function readPassword(config: StorageConfig & { kind: "postgres" }): Promise<
  string | undefined
> {
  if (config.passwordFile === undefined) {
    // Outside a narrowed --allow-env (or named by --deny-env), reading PGPASSWORD
    // would prompt on a terminal (the service would wait on it) or throw; read as
    // absent, it would end in a baffling "password authentication failed". Say why.
    const reader = envReader("auth");
    // A deny is deliberate, unlike a variable a narrowed --allow-env leaves out: the login goes
    // without a password (trust, peer or certificate authentication), as if it were unset.
    if (reader.unreadableEnv("PGPASSWORD")?.denied) return undefined;
    return decidingEnv(reader, "PGPASSWORD", {
      decides: "the password of the PostgreSQL login (--storage postgres://…)",
      allow: ["PGPASSWORD"],
      instead: "use --storage-password-file",
    });
  }
  let text: string;
  try {
    text = await Deno.readTextFile(config.passwordFile);
  } catch (err) {
    throw new ConfigError(
      `--storage-password-file ${config.passwordFile}: ${(err as Error).message.split(":")[0]}`,
    );
  }
  const password = text.replace(/\r?\n$/, "");
  if (password === "" || password.includes("\n")) {
    throw new ConfigError(
      `--storage-password-file ${config.passwordFile}: expected one line holding the password`,
    );
  }
  return password;
}

/**
 * Opens the configured backend, ready for `bootstrapCluster`. `log` gets
 * what the backend says while serving (PostgreSQL connection trouble).
 */
export async function openStorage(config: StorageConfig, log?: Logger): Promise<Backend> {
  if (config.kind === "postgres") {
    // postgres.js reads a PG* variable through process.env for each option it
    // is not given (PGAPPNAME, PGSSLNEGOTIATION, …, PGPASSWORD when there is
    // none): outside a narrowed --allow-env each would prompt a terminal.
    // Guarded, one it may not read is absent, as for tbot.
    guardNodeEnv(process);
    refuseSessionAttrs();
    return await PostgresBackend.open({
      location: config.location,
      password: await readPassword(config),
      ...(log ? { log } : {}),
    });
  }
  // The file and its SQLite companions hold CA keys: DenoKvBackend makes them 0600.
  return await DenoKvBackend.open(config.path);
}

/**
 * postgres.js takes `PGTARGETSESSIONATTRS` when no option says otherwise, and
 * no option can switch it off. Set, the driver checks each new connection to
 * a PostgreSQL 13 or older with a query nothing awaits: if the server stops
 * during it, the rejection is unhandled and the auth process exits. `--storage`
 * names one server, so the check would choose nothing: refuse the variable
 * rather than run with it. One this process may not read is hidden from the
 * driver by {@linkcode guardNodeEnv}.
 */
function refuseSessionAttrs(): void {
  const name = "PGTARGETSESSIONATTRS";
  const reader = envReader("auth");
  if (reader.unreadableEnv(name) !== undefined || reader.env(name) === undefined) return;
  throw new ConfigError(
    `${name} is set: --storage postgres://… names one server and Keybound does not support ` +
      `choosing sessions by attributes; unset ${name} for the auth service`,
    { details: { env: name } },
  );
}

/**
 * True if the storage is a Deno KV file that does not exist yet: a start on
 * it creates a new cluster, so the new cluster's name rules apply before the
 * file (or the data directory holding it) is made.
 */
export async function isNewKvFile(config: StorageConfig): Promise<boolean> {
  if (config.kind !== "kv") return false;
  return await Deno.stat(config.path).then(() => false, (err) => {
    if (err instanceof Deno.errors.NotFound) return true;
    throw err;
  });
}

/** How the storage is described in logs: never a password. */
export function describeStorage(config: StorageConfig): string {
  return config.kind === "kv" ? `deno kv ${config.path}` : `postgres ${config.location.display}`;
}
