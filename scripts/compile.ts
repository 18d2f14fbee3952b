/**
 * `deno task compile`: builds `tbot`, `tctl` and the auth service as single
 * binaries with `deno compile`, each with the permission flags it needs baked
 * in (a compiled program can never exceed them and is never prompted).
 *
 * `deno compile` needs `denort`, the runtime the binaries are built from. It
 * downloads it from dl.deno.land once per Deno version; on a closed network,
 * set `DENORT_BIN` to a denort binary of the same version (not the full
 * `deno` binary: that yields a program that starts a REPL).
 *
 * Usage: deno task compile [--out-dir DIR] [NAME...]
 *
 * @module
 */
import { AUTH_V8_FLAGS } from "../runtime-adapters/deno/auth_process.ts";

/** One binary to build. */
export interface CompileTarget {
  /** Output file name. */
  name: "tbot" | "tctl" | "keybound-auth";
  /** Entry point, relative to the project root. */
  entry: string;
  /** Permission and unstable flags baked into the binary. */
  flags: string[];
  /** Files the program reads at run time, embedded (relative to the project root). */
  include?: string[];
}

/** The binaries `deno task compile` builds; flags match the `deno task` entries. */
export const COMPILE_TARGETS: readonly CompileTarget[] = [
  {
    name: "tbot",
    entry: "runtime-adapters/deno/entry/tbot.ts",
    flags: [
      "--v8-flags=--max-semi-space-size=1,--no-opt,--no-maglev,--lite-mode,--expose-gc",
      "--unstable-kv",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys=hostname,osRelease,uid,gid",
      "--allow-run",
    ],
  },
  {
    name: "tctl",
    entry: "runtime-adapters/deno/entry/tctl.ts",
    // --allow-write and --allow-run: `tctl edit` writes a private temp file and runs the editor.
    flags: ["--allow-net", "--allow-read", "--allow-env", "--allow-write", "--allow-run"],
  },
  {
    name: "keybound-auth",
    entry: "runtime-adapters/deno/entry/auth.ts",
    flags: [
      AUTH_V8_FLAGS,
      "--unstable-kv",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      // uid: the owner checks of the directories on the front's socket path (serve.ts).
      "--allow-sys=hostname,uid",
    ],
    // The fleet console's pages, served under /web/ (runtime-adapters/deno/console_assets.ts).
    include: ["runtime-adapters/browser/console/"],
  },
];

/** Why a compile failed. */
export type CompileFailure =
  /** The denort download was unreachable and no DENORT_BIN was given. */
  | "denort_unreachable"
  /** Anything else (type errors, a missing entry point, a bad DENORT_BIN, ...). */
  | "other";

/** The result of compiling one target. */
export type CompileOutcome =
  | { ok: true; path: string }
  | { ok: false; failure: CompileFailure; message: string };

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The full `deno compile` argument list for `target` writing into `outDir`. */
export function compileArgs(target: CompileTarget, outDir: string): string[] {
  return [
    "compile",
    "--quiet",
    ...target.flags,
    ...(target.include ?? []).flatMap((path) => ["--include", `${ROOT}${path}`]),
    "--output",
    `${outDir}/${target.name}`,
    `${ROOT}${target.entry}`,
  ];
}

/** Classifies `deno compile`'s stderr: did it fail fetching denort? */
export function classifyCompileFailure(stderr: string): CompileFailure {
  return /Setting up base binary/.test(stderr) && /denort-[\w-]+\.zip/.test(stderr)
    ? "denort_unreachable"
    : "other";
}

/** Compiles `target` into `outDir`; never throws for a failed build. */
export async function compileTarget(
  target: CompileTarget,
  outDir: string,
): Promise<CompileOutcome> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(target, outDir),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.success) return { ok: true, path: `${outDir}/${target.name}` };
  const stderr = new TextDecoder().decode(out.stderr).trim();
  const failure = Deno.env.get("DENORT_BIN") ? "other" : classifyCompileFailure(stderr);
  return { ok: false, failure, message: stderr };
}

/** The advice printed when denort cannot be downloaded. */
export const DENORT_ADVICE =
  "deno compile could not download denort (the runtime compiled binaries are built from) " +
  "from dl.deno.land. On a closed network, set DENORT_BIN to a denort binary of Deno " +
  `${Deno.version.deno} (from denort-<target>.zip of the same release), then run ` +
  "`deno task compile` again. The npm registry has no denort, and the full deno binary does " +
  "not do: a program built on it runs as deno itself.";

async function main(args: string[]): Promise<number> {
  let outDir = `${ROOT}dist`;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--out-dir") outDir = args[++i];
    else names.push(args[i]);
  }
  const targets = names.length
    ? COMPILE_TARGETS.filter((t) => names.includes(t.name))
    : COMPILE_TARGETS;
  if (targets.length !== (names.length || COMPILE_TARGETS.length)) {
    console.error(`unknown target; choose from ${COMPILE_TARGETS.map((t) => t.name).join(", ")}`);
    return 2;
  }
  await Deno.mkdir(outDir, { recursive: true });
  for (const target of targets) {
    const r = await compileTarget(target, outDir);
    if (r.ok) {
      console.log(`built ${r.path}`);
      continue;
    }
    console.error(r.failure === "denort_unreachable" ? DENORT_ADVICE : r.message);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
