/**
 * The agent's storage interface: the bot's internal state directory
 * (Teleport's "storage destination") and, with the same interface, the
 * directories outputs write into. Adapters implement it (a directory on
 * Deno, memory anywhere); core code never touches a file system directly.
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
import { fromUtf8, utf8 } from "../util/encoding.ts";
import type { KeyObjectStore } from "./stored_keys.ts";

/** Releases a lock taken with {@linkcode AgentStorage.tryLock}. */
export type ReleaseLock = () => Promise<void>;

/** A place the agent keeps named files. */
export interface AgentStorage {
  /** True if the contents survive a restart (a directory), false for memory. */
  readonly persistent: boolean;
  /**
   * Present where the storage keeps private keys as `CryptoKey` objects
   * (IndexedDB): key files then hold references, never key bytes (see
   * ./stored_keys.ts).
   */
  readonly keyObjects?: KeyObjectStore;
  /** Human-readable location for logs and errors, e.g. `directory /var/lib/teleport/bot`. */
  describe(): string;
  /** Creates the location if needed (directories with mode 0700) and checks it is writable. */
  init(): Promise<void>;
  /** The file's bytes, or null when it does not exist. */
  read(name: string): Promise<Uint8Array | null>;
  /** Replaces the file atomically (temporary file and rename); files get mode 0600. */
  write(name: string, data: Uint8Array | string): Promise<void>;
  /** Removes the file; no error if it does not exist. */
  delete(name: string): Promise<void>;
  /**
   * Present where the storage can write and delete several files in one
   * atomic step (Durable Object storage): `files` maps names to new contents,
   * or to null to delete. Group writes then need no journal
   * (./journal.ts).
   */
  readonly writeGroup?: (files: Record<string, Uint8Array | string | null>) => Promise<void>;
  /** Names of the files present. */
  list(): Promise<string[]>;
  /**
   * Takes the exclusive lock on this storage so a second agent cannot share
   * it. Throws a {@linkcode KeyboundError} `STORAGE_ERROR` when another
   * process holds it.
   */
  tryLock(): Promise<ReleaseLock>;
}

/** File names in the bot's internal storage, as Teleport lays them out. */
export const STORAGE_FILES = {
  /** Active bound private key, PKCS#8 PEM. */
  boundKey: "id_bkp",
  /** Active bound public key, authorized_keys line and newline. */
  boundPublicKey: "id_bkp.pub",
  /** Last join state, the JWT exactly as received. */
  joinState: "bkp_state",
  /** Bound key history, `{"entries":[{time, private_key}]}`, newest first. */
  keyHistory: "bkp_key_history.json",
  /** Certificate subject key, PKCS#8 PEM. */
  key: "key",
  /** Certificate subject key, authorized_keys line. */
  publicKey: "key.pub",
  /** SSH user certificate. */
  sshCert: "key-cert.pub",
  /** X.509 client certificate, PEM. */
  tlsCert: "tlscert",
  /** User CA certificates, PEM. */
  tlsCaCerts: "tlscacerts",
  /** User CA SSH keys, authorized_keys lines. */
  sshCaCerts: "sshcacerts",
  /** Hex SHA-256 of the token name the identity was obtained with. */
  tokenHash: "tokenhash",
  /** A join whose answer may be lost, kept until its result is stored (see pending_join.ts). */
  pendingJoin: "pending_join.json",
  /**
   * Host CA certificates the bot verifies the auth service with: learned by
   * pinning, then moved by each join's trust bundle (Keybound addition, see
   * docs/tbot.md and trust/host_trust.ts).
   */
  hostCa: "host_ca.pem",
  /** The `onboarding.ca_pins` the saved host CAs descend from, one per line. */
  hostCaPins: "host_ca_pins",
  /** The last trust bundle received (docs/protocol.md §10), JSON. */
  trustBundle: "trust_bundle.json",
  /** The lock file (directory storage only). */
  lock: "lock",
} as const;

/** Reads a UTF-8 file, or null when absent. */
export async function readText(storage: AgentStorage, name: string): Promise<string | null> {
  const bytes = await storage.read(name);
  if (bytes === null) return null;
  try {
    return fromUtf8(bytes);
  } catch (cause) {
    throw new KeyboundError(
      "STORAGE_ERROR",
      `file "${name}" in ${storage.describe()} is not valid UTF-8`,
      { cause },
    );
  }
}

/** Writes a UTF-8 file. */
export function writeText(storage: AgentStorage, name: string, text: string): Promise<void> {
  return storage.write(name, utf8(text));
}
