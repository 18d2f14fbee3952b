/**
 * Reload hooks (`on_renew`): after an output's files are written, run a
 * program or signal a daemon so it picks up the new certificate. The policy
 * lives here (what environment, what counts as failure, what is logged and
 * counted, including the end of the hook's output); starting and signalling processes is the runtime adapter's
 * {@linkcode HookProcesses}.
 *
 * A hook never fails its output: the files are written, so the failure is
 * logged and counted, and the hook runs again after the next write.
 *
 * @example
 * ```ts ignore
 * const out = new HookedOutput(inner, { exec: ["systemctl", "reload", "nginx"], timeout: 10_000 }, {
 *   processes, log, metrics, clock, directory: "/opt/machine-id",
 * });
 * ```
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import type { Logger } from "../../util/log.ts";
import type { Clock } from "../clock.ts";
import type { HOOK_SIGNALS, OnRenewConfig } from "../config/schema.ts";
import type { TbotMetrics } from "../metrics.ts";
import { AfterWrite } from "../outputs/after_write.ts";
import type { Output } from "../outputs/output.ts";
import { errorText } from "../runner/policy.ts";

/** A signal a hook may send. */
export type HookSignal = typeof HOOK_SIGNALS[number];

/** How a hook's process ended. */
export interface HookExit {
  /** Exit code; null when killed by a signal. */
  code: number | null;
  /** The signal that ended it (e.g. `SIGKILL` at the timeout), if any. */
  signal: string | null;
  /** True when it was killed because the timeout passed. */
  timedOut: boolean;
  /** The end of what it wrote to standard output (at most {@linkcode HOOK_OUTPUT_TAIL} bytes). */
  stdout?: string;
  /** The end of what it wrote to standard error (at most {@linkcode HOOK_OUTPUT_TAIL} bytes). */
  stderr?: string;
}

/**
 * How much of a hook's output is kept, from its end (where a failing
 * program says why), per stream: enough for an error message, bounded
 * whatever the hook prints.
 */
export const HOOK_OUTPUT_TAIL = 512;

/** What the runtime provides to run hooks. */
export interface HookProcesses {
  /**
   * Runs `argv` with exactly `env` (nothing inherited) and no standard input;
   * keeps the last {@linkcode HOOK_OUTPUT_TAIL} bytes of each output stream
   * (without waiting for a stream a background child keeps open); kills it
   * when `timeoutMs` passes.
   */
  run(argv: string[], env: Record<string, string>, timeoutMs: number): Promise<HookExit>;
  /** Reads the PID file, with who owns it and its permission bits (null where unknown). */
  readPidFile(path: string): Promise<PidFile>;
  /** Sends `SIG<signal>` to `pid`. */
  kill(pid: number, signal: HookSignal): void;
}

/** The fixed search path a hook gets: the caller's `PATH` is not passed on. */
export const HOOK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The whole environment of an `exec` hook: a fixed `PATH` and where the
 * output wrote. Nothing of tbot's own environment (which may hold a
 * registration secret or proxy credentials) is passed on.
 */
export function hookEnvironment(service: string, directory: string): Record<string, string> {
  return { PATH: HOOK_PATH, KEYBOUND_OUTPUT_NAME: service, KEYBOUND_OUTPUT_DIR: directory };
}

/** A PID file as read: its text, owner and mode, and the reading process's user. */
export interface PidFile {
  /** The file's content. */
  text: string;
  /** Owner uid, null where the platform has none. */
  uid: number | null;
  /** Permission bits, null where the platform has none. */
  mode: number | null;
  /** tbot's own uid, null where the platform has none. */
  selfUid: number | null;
}

/**
 * Refuses a PID file someone else could have written (as OpenSSH's
 * StrictModes does): tbot often runs as root, and whoever can write the file
 * chooses which process gets the signal at every renewal. It must be owned by
 * root or by tbot's own user and not writable by group or others.
 */
export function checkPidFileOwner(file: PidFile, path: string): void {
  const { uid, mode, selfUid } = file;
  if (mode !== null && (mode & 0o022) !== 0) {
    throw new KeyboundError(
      "HOOK_FAILED",
      `pid_file ${path} is writable by group or others (mode ${(mode & 0o777).toString(8)}): ` +
        "anyone who can write it chooses which process is signalled",
    );
  }
  if (uid !== null && uid !== 0 && uid !== selfUid) {
    throw new KeyboundError(
      "HOOK_FAILED",
      `pid_file ${path} is owned by uid ${uid}, neither root nor tbot's user: ` +
        "its owner would choose which process is signalled",
    );
  }
}

/** Parses a PID file: one positive decimal process id (1, init, is refused). */
export function parsePidFile(text: string, path: string): number {
  const t = text.trim();
  const pid = /^[0-9]{1,10}$/.test(t) ? Number(t) : NaN;
  if (!(pid > 1 && pid <= 2 ** 22)) {
    throw new KeyboundError("HOOK_FAILED", `pid_file ${path} does not hold a process id`);
  }
  return pid;
}

/** What a {@linkcode HookedOutput} needs. */
export interface HookDeps {
  /** Starts and signals processes. */
  processes: HookProcesses;
  /** Logger. */
  log: Logger;
  /** Metrics, if exported. */
  metrics?: TbotMetrics;
  /** Time source for durations. */
  clock: Clock;
  /** The output's directory, absolute (passed to `exec` hooks). */
  directory: string;
}

/** An output whose successful writes are followed by its `on_renew` hook. */
export class HookedOutput extends AfterWrite {
  #hook: OnRenewConfig;
  #deps: HookDeps;

  /**
   * @param inner the output that writes the files
   * @param hook the configured `on_renew`
   * @param deps processes, log, metrics
   */
  constructor(inner: Output, hook: OnRenewConfig, deps: HookDeps) {
    super(inner);
    this.#hook = hook;
    this.#deps = deps;
  }

  /** Runs the hook; a failed hook does not fail the write (it is logged and counted). */
  protected async afterWrite(): Promise<void> {
    await this.runHook();
  }

  /** Runs the hook once; logs and counts the result, never throws. Resolves true on success. */
  async runHook(): Promise<boolean> {
    const { log, metrics, clock } = this.#deps;
    const hook = this.#hook;
    const kind = "exec" in hook ? "exec" : "signal";
    const start = clock.now().getTime();
    let result: "success" | "failure" | "timeout" = "failure";
    let fields: Record<string, string | number> = {};
    try {
      if ("exec" in hook) {
        const exit = await this.#deps.processes.run(
          hook.exec,
          hookEnvironment(this.name, this.#deps.directory),
          hook.timeout,
        );
        fields = exit.code === null ? { killed_by: exit.signal ?? "signal" } : {
          exit_code: exit.code,
        };
        // The hook's own words (its environment holds no secret); the logger escapes them.
        for (const stream of ["stdout", "stderr"] as const) {
          const text = exit[stream]?.trim();
          if (text) fields[stream] = text.slice(-HOOK_OUTPUT_TAIL);
        }
        if (exit.timedOut) result = "timeout";
        else if (exit.code === 0) result = "success";
        if (exit.code !== null) metrics?.hookExitCode.set({ service: this.name }, exit.code);
      } else {
        const file = await this.#deps.processes.readPidFile(hook.pid_file);
        checkPidFileOwner(file, hook.pid_file);
        const pid = parsePidFile(file.text, hook.pid_file);
        this.#deps.processes.kill(pid, hook.signal);
        fields = { pid, signal: `SIG${hook.signal}` };
        result = "success";
      }
    } catch (err) {
      fields = { ...fields, error: errorText(err) };
    }
    const seconds = (clock.now().getTime() - start) / 1000;
    metrics?.hookRuns.inc({ service: this.name, hook: kind, result });
    metrics?.hookDuration.observe({ service: this.name, hook: kind }, seconds);
    const line = { service: this.name, hook: kind, result, ...fields, duration_seconds: seconds };
    if (result === "success") log.info("reload hook ran", line);
    else if (result === "timeout") {
      log.error("reload hook killed at its timeout; it runs again after the next renewal", {
        ...line,
        timeout_seconds: ("exec" in hook ? hook.timeout : 0) / 1000,
      });
    } else log.error("reload hook failed; it runs again after the next renewal", line);
    return result === "success";
  }
}
