/**
 * A tiny structured logger interface. Adapters decide where lines go (text
 * or JSON on stderr); core code only calls these methods and never passes
 * keys, secrets or join states as fields.
 *
 * Messages and values often carry what a client sent (a token name, an
 * error text), so every line is escaped: one log call is always exactly one
 * line, and no value can move the cursor, recolour, retitle the terminal or
 * forge another line. In text, a value is bare only if it is printable
 * ASCII without space, `"`, `=` or `\`, otherwise a JSON-style quoted string;
 * JSON lines stay valid JSON.
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

/**
 * Characters that could forge a line or a terminal sequence, or make a line
 * read differently than it is: C0 (newline, ESC, BEL, …), DEL, C1 (0x9b is
 * an 8-bit CSI), soft hyphen, the Unicode line and paragraph separators,
 * zero-width and bidirectional controls, BOM and interlinear annotations,
 * and lone surrogates.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeChar(c: string): string {
  return SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * `s` with every unsafe character (see {@linkcode UNSAFE}) and backslash
 * written as an escape, so it prints as exactly one inert line.
 *
 * @example
 * ```ts
 * escapeLogText("ok\n\x1b[2K") // => "ok\\n\\u001b[2K"
 * ```
 */
export function escapeLogText(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(UNSAFE, escapeChar);
}

/** Whether `s` holds a character that {@linkcode escapeLogText} escapes, newline aside. */
export function hasUnsafeText(s: string): boolean {
  return s.replaceAll("\n", "").search(UNSAFE) !== -1;
}

/**
 * A JSON text, or a YAML one whose strings holding such characters are
 * double-quoted, with every unsafe character but newline written as an escape
 * (`\r`, `\t`, `\uXXXX`). Raw, they can only sit inside those strings, where
 * both formats read the escape back as the same character; newlines stay,
 * they lay the document out.
 */
export function escapeUnsafeInQuoted(text: string): string {
  return text.replace(UNSAFE, (c) => c === "\n" ? c : escapeChar(c));
}

/** Values printed without quotes: printable ASCII other than space, `"`, `=` and `\`. */
const BARE = /^[!#-<>-\[\]-~]+$/;

/**
 * A JSON string literal that also escapes what JSON leaves raw (DEL, C1,
 * U+2028, bidi …): a value quoted inside a message or a log field, readable
 * back exactly (`JSON.parse`) whatever it holds, quotes and backslashes too.
 *
 * @example
 * ```ts
 * quoteLogText('a "b"\n') // => '"a \\"b\\"\\n"'
 * ```
 */
export function quoteLogText(s: string): string {
  return JSON.stringify(s).replace(UNSAFE, escapeChar);
}

function toText(v: unknown): string {
  if (v instanceof Error) return v.message;
  if (typeof v === "string") return v;
  if (typeof v === "bigint" || v === undefined || typeof v === "function") return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** One `key=value` word: bare when safe, else a quoted, escaped string. */
function textField(key: string, v: unknown): string {
  const s = toText(v);
  return `${BARE.test(key) ? key : quoteLogText(key)}=${BARE.test(s) ? s : quoteLogText(s)}`;
}

function jsonValue(v: unknown): unknown {
  if (v instanceof Error) return v.message;
  if (typeof v === "bigint") return String(v);
  return v;
}

/** One JSON line; characters JSON.stringify leaves raw are escaped too (still valid JSON). */
function jsonLine(obj: Record<string, unknown>): string {
  let line: string;
  try {
    line = JSON.stringify(obj);
  } catch {
    // A circular or otherwise unserializable field: keep the line, lose the field's detail.
    line = JSON.stringify(
      obj,
      (k, v) => k !== "" && typeof v === "object" && v !== null ? String(v) : v,
    );
  }
  return line.replace(UNSAFE, escapeChar);
}

/**
 * A {@linkcode Logger} that writes text or JSON lines.
 *
 * @example A JSON logger
 * ```ts ignore
 * import { createLogger } from "@keybound/keybound";
 *
 * const log = createLogger({ format: "json" });
 * log.info("joined", { bot: "my-bot" });
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((l: string) => console.error(l));
  const now = options.now ?? (() => new Date());
  const emit = (level: string, msg: string, fields: LogFields = {}) => {
    if (level === "debug" && !options.debug) return;
    const all = options.component ? { component: options.component, ...fields } : fields;
    if (options.format === "json") {
      const obj: Record<string, unknown> = { time: now().toISOString(), level, msg };
      for (const [k, v] of Object.entries(all)) obj[k] = jsonValue(v);
      write(jsonLine(obj));
    } else {
      const kv = Object.entries(all).map(([k, v]) => textField(k, v)).join(" ");
      const head = `${now().toISOString()} ${level.toUpperCase().padEnd(5)} ${escapeLogText(msg)}`;
      write(kv ? `${head} ${kv}` : head);
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
