/**
 * `tbot` on Deno (`deno task tbot ...`): the runtime half of the agent —
 * files, TLS trust, the diagnostics listener, signals — handed to the
 * runtime-agnostic command logic in `src/cli/tbot/`.
 *
 * @module
 */
import { fetchFailure } from "./fetch_errors.ts";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import { runTbot } from "../../src/cli/tbot/main.ts";
import { denoHookProcesses } from "./hook_processes.ts";
import { denoFileSharing } from "./file_sharing.ts";
import type { TbotPlatform } from "../../src/cli/tbot/platform.ts";
import { TBOT_VERSION } from "../../src/agent/version.ts";
import { ConfigError, KeyboundError } from "../../src/errors.ts";
import { formatHostPort, parseHostPort } from "../../src/util/host_port.ts";
import { DirectoryStorage } from "./dir_storage.ts";
import { writeFileAtomic } from "./fs.ts";
import { fileErrorMessage } from "./os_error.ts";
import { installSignalHandlers } from "./signals.ts";
import { argParser } from "./arg_parser.ts";
import { denoCliPath } from "./deno_cli.ts";
import { envReader, granted, missingPermission } from "./permissions.ts";

/**
 * Flags tbot runs with; the same as the `tbot` task in deno.json and the
 * compiled binary. A 1 MB young generation keeps V8 from growing it to
 * 16 MB+ under the renewal loop's steady allocation: ~6 MB less at a oneshot's
 * peak and a flat daemon (docs/benchmarks.md, "tbot"). Without V8's optimizing
 * tiers (TurboFan, Maglev; the interpreter and the baseline compiler remain) a
 * daemon holds ~10 MB less after 1,000 renewals and grows a third as much, for
 * ~5 % more CPU in a 20 ms renewal loop and none measurable in a oneshot:
 * tbot's heavy work is WebCrypto and I/O, not hot JavaScript
 * (docs/benchmarks.md, "Session 6: tbotload"). `--lite-mode` goes one step
 * further (no compiler at all, lazily allocated feedback; no WebAssembly,
 * which tbot does not use): ~2.5 MB less in the daemon for ~3–5 % more CPU
 * in that loop, a oneshot none slower (docs/benchmarks.md, "Session 7:
 * tbotrss"). `--expose-gc` gives the
 * daemon V8's `gc()`, run after a join at most once per 10 s
 * (src/cli/tbot/heap_release.ts): without it the pages a renewal's garbage
 * took stay until V8's next full collection, +5–7 MB over 1,000 renewals
 * (docs/benchmarks.md, "Session 7: tbotrss").
 */
export const TBOT_DENO_FLAGS = [
  "--v8-flags=--max-semi-space-size=1,--no-opt,--no-maglev,--lite-mode,--expose-gc",
  "--unstable-kv",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys=hostname,osRelease,uid,gid",
  // on_renew reload hooks start programs and signal daemons.
  "--allow-run",
];

// Node's `process.env` is guarded by the entry points that run npm packages as npm
// (./entry/tbot.ts, the launcher's fallback to the sources), not here: the
// bundle's dependencies read no variable, and touching `process` at all loads
// Deno's Node layer, +1.8 MB that a daemon would keep (docs/benchmarks.md,
// "Session 13: tbot").

async function readTextFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(fileErrorMessage("read", path, err), { cause: err });
  }
}

function hostname(): string {
  // Asked first: outside a narrowed --allow-sys, a terminal would be prompted.
  if (!granted({ name: "sys", kind: "hostname" })) return "unknown";
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/**
 * The command that starts this tbot: the compiled binary itself, or
 * `deno run <flags> <entry point>` with the entry this process started from
 * (./entry/tbot_launch.ts for the `tbot` task; it refuses SIGUSR1 first).
 * Not this module's own URL: run from the bundle, that is a file in dist/.
 */
function tbotCommand(): string[] {
  const deno = denoCliPath();
  if (!deno) return [Deno.execPath()];
  return [deno, "run", ...TBOT_DENO_FLAGS, fileURLToPath(Deno.mainModule)];
}

const encoder = new TextEncoder();

/** V8's `gc` (global with --expose-gc) and the options of its extension. */
const gcFunction = (globalThis as {
  gc?: (options?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;
}).gc;

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string) {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

/** The Deno implementation of {@linkcode TbotPlatform}. */
export const denoPlatform: TbotPlatform = {
  // A variable outside a narrowed --allow-env is absent, never a prompt (./permissions.ts).
  ...envReader("tbot"),
  // Asked first: a file outside a narrowed --allow-read/--allow-write would prompt a terminal.
  missingFileAccess: (path, access) => missingPermission({ name: access, path }),
  readTextFile,
  writeTextFile: (path, text, mode) =>
    writeFileAtomic(path, text, { mode }).catch((err) => {
      throw new KeyboundError("STORAGE_ERROR", fileErrorMessage("write", path, err), {
        cause: err,
      });
    }),
  removeFile: async (path) => {
    await Deno.remove(path).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  },
  absolutePath: (path) => resolve(path),
  openDirectory: (path, options) => new DirectoryStorage(path, options),
  openKvStorage: async (path) => {
    // Loaded only when configured, so directory storage pays nothing for it.
    const { DenoKvAgentStorage } = await import("./kv_agent_storage.ts");
    const kv = await DenoKvAgentStorage.open(path);
    return { storage: kv, close: () => kv.close() };
  },
  createFetch: async (baseUrl, trust) => {
    // Loaded on first use: the certificate parser it needs is the heaviest import.
    const { createTrustedFetch } = await import("./trust.ts");
    try {
      return await createTrustedFetch(baseUrl, trust, readTextFile);
    } catch (err) {
      // Learning the CA through a pin connects first: its failure is worded like fetch's.
      const known = fetchFailure(err, new URL(baseUrl).host);
      if (!known) throw err;
      throw new KeyboundError(
        known.code,
        `cannot reach the auth service at ${baseUrl}: ${known.message}`,
        { cause: err },
      );
    }
  },
  serve: (addr, handler) => {
    const hp = parseHostPort(addr, "diag_addr");
    // Asked first: outside a narrowed --allow-net, listening would prompt a terminal.
    const missing = missingPermission({ name: "net", host: formatHostPort(hp.host, hp.port) });
    if (missing) {
      throw new ConfigError(`diag_addr ${addr}: ${missing}`, {
        details: { permission: "net", host: formatHostPort(hp.host, hp.port) },
      });
    }
    const server = Deno.serve({ hostname: hp.host, port: hp.port, onListen: () => {} }, handler);
    return Promise.resolve({
      addr: formatHostPort(server.addr.hostname, server.addr.port),
      close: () => server.shutdown(),
    });
  },
  // V8's `gc`, global only with --expose-gc (TBOT_DENO_FLAGS): a full collection,
  // which hands the pages it empties back to the operating system. The
  // "last-resort" flavour collects as V8 does under memory pressure — two
  // memory-reducing mark-compacts, then it shrinks the young generation and
  // returns its pooled pages — where a plain `gc()` runs one collection that
  // keeps them: ~1 MB less in a renewing daemon for one more collection
  // (docs/benchmarks.md, "Session 13: tbot").
  ...(typeof gcFunction === "function"
    ? {
      releaseMemory: () => gcFunction!({ type: "major", execution: "sync", flavor: "last-resort" }),
    }
    : {}),
  onSignals: installSignalHandlers,
  hookProcesses: denoHookProcesses,
  fileSharing: denoFileSharing,
  hostInfo: () => ({
    version: TBOT_VERSION,
    hostname: hostname(),
    os: Deno.build.os,
    architecture: Deno.build.arch,
  }),
  tbotCommand,
  pid: () => Deno.pid,
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (line) => writeAll(Deno.stderr, line + "\n"),
};

/** Runs tbot; returns the exit code. Started by ./entry/tbot.ts. */
export function main(args: string[]): Promise<number> {
  return runTbot(args, denoPlatform, argParser);
}
