/**
 * A tiny structured logger interface. Adapters decide where lines go (text
 * or JSON on stderr); core code only calls these methods and never passes
 * keys, secrets or join states as fields.
 *
 * @module
 */

/** Structured fields of a log line. */
export type LogFields = Record<string, unknown>;

/** The logger core modules accept. */
export interface Logger {
  /** Debug detail, hidden unless debug logging is on. */
  debug(msg: string, fields?: LogFields): void;
  /** Normal operation. */
  info(msg: string, fields?: LogFields): void;
  /** Something an operator should look at. */
  warn(msg: string, fields?: LogFields): void;
  /** A failure. */
  error(msg: string, fields?: LogFields): void;
}

/** Output format of {@linkcode createLogger}. */
export type LogFormat = "text" | "json";

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** `text` (default) or `json` lines. */
  format?: LogFormat;
  /** Emit debug lines. */
  debug?: boolean;
  /** Component name added to every line. */
  component?: string;
  /** Where lines go; defaults to `console.error`. */
  write?: (line: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

function fmtValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return /[\s"=]/.test(s ?? "") ? JSON.stringify(s) : String(s);
}

/** A {@linkcode Logger} that writes text or JSON lines. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((l: string) => console.error(l));
  const now = options.now ?? (() => new Date());
  const emit = (level: string, msg: string, fields: LogFields = {}) => {
    if (level === "debug" && !options.debug) return;
    const all = options.component ? { component: options.component, ...fields } : fields;
    if (options.format === "json") {
      const obj: Record<string, unknown> = { time: now().toISOString(), level, msg };
      for (const [k, v] of Object.entries(all)) obj[k] = v instanceof Error ? v.message : v;
      write(JSON.stringify(obj));
    } else {
      const kv = Object.entries(all).map(([k, v]) => `${k}=${fmtValue(v)}`).join(" ");
      write(`${now().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? " " + kv : ""}`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
