/**
 * What the tbot commands need from the runtime. The Deno adapter
 * (`runtime-adapters/deno/tbot_main.ts`) implements it; the command logic in
 * this folder stays runtime-agnostic and testable.
 *
 * @module
 */
import type { HostInfo } from "../../agent/heartbeat.ts";
import type { HookProcesses } from "../../agent/hooks/mod.ts";
import type { FileSharing } from "../../agent/sharing/mod.ts";
import type { DestinationOptions } from "../../agent/outputs/mod.ts";
import type { AgentStorage } from "../../agent/storage.ts";
import type { Logger } from "../../util/log.ts";
import type { EnvReader } from "../env.ts";

/** How the agent decides to trust the auth service's TLS certificate. */
export type TrustSettings =
  /**
   * System roots (plus `DENO_CERT` on Deno), and the host CAs saved in
   * `storage` (moved by CA rotations, see src/agent/trust/host_trust.ts).
   */
  | { mode: "system"; storage?: AgentStorage; log?: Logger }
  /**
   * A CA bundle read from `onboarding.ca_path`, and the host CAs saved in
   * `storage`: those only, not the system roots.
   */
  | { mode: "ca_path"; path: string; storage?: AgentStorage; log?: Logger }
  /**
   * SPKI pins of the host CA (`tctl status`); the CA is learned once and
   * saved in storage, then moved by CA rotations; only the saved CAs are
   * trusted, not the system roots.
   */
  | { mode: "pins"; pins: string[]; storage: AgentStorage; log?: Logger }
  /** No verification at all (`insecure: true`), with a loud warning. */
  | { mode: "insecure" }
  /** Plain HTTP to a loopback address (`insecure: true` only). */
  | { mode: "plain_http" };

/** How the bot reaches the auth service. */
export interface AuthTransport {
  /** The fetch, verifying the server as the trust settings say. */
  fetch: typeof fetch;
  /**
   * Moves the trust to these host CAs (a join result's trust bundle, already
   * saved in storage); a no-op where the settings keep no host trust.
   */
  followHostCas(pems: string[]): void;
}

/** A running diagnostics listener. */
export interface DiagServer {
  /** The address actually bound (port 0 resolved). */
  addr: string;
  /** Stops listening. */
  close(): Promise<void>;
}

/** Storage that holds a resource (a database handle) until closed. */
export interface ClosableStorage {
  /** The storage. */
  storage: AgentStorage;
  /** Closes the underlying resource; the storage is unusable afterwards. */
  close(): void;
}

/** What tbot does with a file: reads it, or writes (creates, replaces, removes) it. */
export type FileAccess = "read" | "write";

/** Runtime services for the tbot commands. */
export interface TbotPlatform extends EnvReader {
  /**
   * Why this process may not `access` `path` (a file, or a directory and all
   * below it), naming the flag that would allow it; undefined when it may.
   * Never asks anyone (./file_access.ts). Absent: every path is allowed.
   */
  missingFileAccess?(path: string, access: FileAccess): string | undefined;
  /** Reads a text file; throws a `KeyboundError` naming the path when it cannot. */
  readTextFile(path: string): Promise<string>;
  /** Writes a text file atomically with `mode`, creating no directories. */
  writeTextFile(path: string, text: string, mode: number): Promise<void>;
  /** Removes a file if present. */
  removeFile(path: string): Promise<void>;
  /** `path` made absolute against the working directory. */
  absolutePath(path: string): string;
  /** Opens a directory destination (storage or output). */
  openDirectory(path: string, options?: DestinationOptions): AgentStorage;
  /**
   * Opens the bot's storage in a key-value database file (`storage: {type:
   * deno_kv}`); `close` releases the database after the storage lock.
   */
  openKvStorage(path: string): Promise<ClosableStorage>;
  /** Builds the fetch to reach `baseUrl` with the given trust. */
  createFetch(baseUrl: string, trust: TrustSettings): Promise<AuthTransport>;
  /** Serves the diagnostics app on `addr` (`host:port`). */
  serve(addr: string, handler: (req: Request) => Response | Promise<Response>): Promise<DiagServer>;
  /**
   * Gives the heap's free pages back to the operating system now (a full
   * garbage collection), where the runtime allows it; the daemon calls it
   * after its joins (./heap_release.ts). Absent: never.
   */
  releaseMemory?(): void;
  /** Installs handlers for stop (SIGINT/SIGTERM) and reload (SIGHUP); returns an uninstaller. */
  onSignals(handlers: { stop(signal: string): void; reload(signal: string): void }): () => void;
  /** Runs and signals the processes of `on_renew` reload hooks. */
  hookProcesses: HookProcesses;
  /** Shares output files with `destination.readers`. */
  fileSharing: FileSharing;
  /** Host facts for heartbeats. */
  hostInfo(): HostInfo;
  /** The command line that starts this tbot (the program and its fixed arguments), absolute paths. */
  tbotCommand(): string[];
  /** This process id. */
  pid(): number;
  /** Writes to standard output. */
  stdout(text: string): void;
  /** Writes one log line to standard error. */
  stderr(line: string): void;
}
