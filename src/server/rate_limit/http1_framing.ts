/**
 * Where HTTP/1.1 messages begin and end in a byte stream, without parsing
 * more than that: the start line, `Content-Length` and `Transfer-Encoding`
 * of each header section, and chunk sizes. The public front (which passes
 * bytes and parses no HTTP otherwise) uses it to give each request a
 * deadline from its first byte to its last, and to pass a connection's next
 * request to the server only once the previous one is answered, so that one
 * connection has at most one answer in flight.
 *
 * @module
 */

/** A header section longer than this is an error (the server refuses much less in practice). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size or trailer line longer than this is an error. */
const MAX_LINE_BYTES = 4 * 1024;

const LF = 10;
const CR = 13;
/** Blank-line bytes between requests that begin none (two CRLFs). */
const MAX_BLANK_BYTES = 4;

/** Where a stream is. */
type State =
  | { at: "idle" }
  | { at: "head" }
  | { at: "body"; left: number }
  | { at: "chunk-size" }
  | { at: "chunk-data"; left: number }
  | { at: "chunk-end" }
  | { at: "trailer" }
  | { at: "until-close" }
  | { at: "opaque" };

/** What one call of {@linkcode Http1Framing.take} found. */
export interface Taken {
  /** Bytes taken from the chunk: up to the end of the message under way, if it ends in it. */
  n: number;
  /** A message began in these bytes. */
  began: boolean;
  /** A message ended with the last byte taken; `interim` for a 1xx answer (another follows). */
  ended?: { interim: boolean };
}

/** What a parsed header section says about the body that follows. */
type Body = "none" | "chunked" | "until-close" | "opaque" | number;

/** Framing of one direction of one HTTP/1.1 connection. */
export class Http1Framing {
  #state: State = { at: "idle" };
  /** CR and LF bytes taken between two requests without beginning one. */
  #blank = 0;
  #head: Uint8Array[] = [];
  #headBytes = 0;
  /** Length of the line being read (without CR), for the end of a header section. */
  #lineLength = 0;
  /** The start line has begun (a byte other than CR and LF was read). */
  #started = false;
  #line: number[] = [];
  /** Why the stream could not be followed, once it cannot. */
  error?: string;
  /** Method of the last request whose header section was read (requests only). */
  method?: string;

  /**
   * @param kind requests (client to server) or responses
   * @param requestMethod for responses: the method of the request being answered
   */
  constructor(
    readonly kind: "request" | "response",
    private readonly requestMethod: () => string | undefined = () => undefined,
  ) {}

  /** A message has begun and not ended. */
  get inMessage(): boolean {
    return this.#state.at !== "idle";
  }

  /** The stream is no longer followed (an error, or a protocol switch): nothing more ends. */
  get opaque(): boolean {
    return this.#state.at === "opaque";
  }

  /** Takes bytes from `chunk` up to the end of the current message (all of them if it does not end). */
  take(chunk: Uint8Array): Taken {
    let i = 0;
    let began = false;
    if (this.#state.at === "idle" && this.kind === "request") {
      // A legacy client's stray CRLF after a request (RFC 9112 §2.2, which
      // servers ignore) begins no request: counted as one, it held the
      // client's FIN and met the request deadline with no request under way
      // (review4 S1). A few bytes only, so a stream of blank lines still
      // begins a request and meets the deadline.
      while (
        i < chunk.length && this.#blank < MAX_BLANK_BYTES && (chunk[i] === CR || chunk[i] === LF)
      ) {
        i++;
        this.#blank++;
      }
      if (i === chunk.length) return { n: i, began };
    }
    if (this.#state.at === "idle" && i < chunk.length) {
      this.#blank = 0;
      this.#state = { at: "head" };
      this.#head = [];
      this.#headBytes = 0;
      this.#lineLength = 0;
      this.#started = false;
      began = true;
    }
    while (i < chunk.length) {
      const s = this.#state;
      switch (s.at) {
        case "opaque":
        case "until-close":
          return { n: chunk.length, began };
        case "idle":
          return { n: i, began };
        case "head": {
          const end = this.#scanHead(chunk, i);
          const upTo = end === -1 ? chunk.length : end + 1;
          this.#head.push(chunk.subarray(i, upTo));
          this.#headBytes += upTo - i;
          if (this.#headBytes > MAX_HEAD_BYTES) return this.#fail("header section too long", began);
          i = upTo;
          if (end === -1) break;
          const body = this.#parseHead();
          if (body === undefined) return this.#fail(this.error!, began);
          const interim = this.#interim;
          if (body === "opaque") {
            this.#state = { at: "opaque" };
            return { n: i, began, ended: { interim: false } };
          }
          if (body === "none" || body === 0) {
            this.#state = { at: "idle" };
            return { n: i, began, ended: { interim } };
          }
          this.#state = body === "chunked"
            ? { at: "chunk-size" }
            : body === "until-close"
            ? { at: "until-close" }
            : { at: "body", left: body };
          break;
        }
        case "body": {
          const n = Math.min(s.left, chunk.length - i);
          s.left -= n;
          i += n;
          if (s.left === 0) {
            this.#state = { at: "idle" };
            return { n: i, began, ended: { interim: false } };
          }
          break;
        }
        case "chunk-size":
        case "chunk-end":
        case "trailer": {
          const lf = chunk.indexOf(LF, i);
          const upTo = lf === -1 ? chunk.length : lf;
          for (let k = i; k < upTo; k++) this.#line.push(chunk[k]);
          if (this.#line.length > MAX_LINE_BYTES) return this.#fail("chunk line too long", began);
          i = lf === -1 ? chunk.length : lf + 1;
          if (lf === -1) break;
          // CRLF only: the server (hyper) never ends a chunked body whose
          // lines end in a bare LF, so taking it as ended took the request
          // out of its deadline, to wait for the idle limit (review2 N1).
          if (this.#line.at(-1) !== CR) return this.#fail("a chunk line not ended by CRLF", began);
          const line = String.fromCharCode(...this.#line.slice(0, -1));
          this.#line = [];
          if (s.at === "chunk-end") {
            if (line !== "") return this.#fail("no CRLF after a chunk", began);
            this.#state = { at: "chunk-size" };
          } else if (s.at === "chunk-size") {
            const size = /^([0-9a-fA-F]+)[ \t]*(;.*)?$/.exec(line);
            const n = size ? parseInt(size[1], 16) : NaN;
            // Bounded by value, not digits: leading zeros are a size the server reads.
            if (!Number.isSafeInteger(n)) return this.#fail("bad chunk size", began);
            this.#state = n === 0 ? { at: "trailer" } : { at: "chunk-data", left: n };
          } else if (line === "") {
            this.#state = { at: "idle" };
            return { n: i, began, ended: { interim: false } };
          }
          break;
        }
        case "chunk-data": {
          const n = Math.min(s.left, chunk.length - i);
          s.left -= n;
          i += n;
          if (s.left === 0) this.#state = { at: "chunk-end" };
          break;
        }
      }
    }
    return { n: i, began };
  }

  #interim = false;

  /** Index of the LF that ends the header section (an empty line), or -1. */
  #scanHead(chunk: Uint8Array, from: number): number {
    for (let k = from; k < chunk.length; k++) {
      const b = chunk[k];
      if (b === LF) {
        // Empty lines before the start line are tolerated (RFC 9112 §2.2).
        if (this.#lineLength === 0 && this.#started) return k;
        this.#lineLength = 0;
      } else if (b !== CR) {
        this.#lineLength++;
        this.#started = true;
      }
    }
    return -1;
  }

  /** The body the header section read announces, or undefined (and `error`) if it cannot be followed. */
  #parseHead(): Body | undefined {
    const bytes = new Uint8Array(this.#headBytes);
    let at = 0;
    for (const part of this.#head) {
      bytes.set(part, at);
      at += part.length;
    }
    this.#head = [];
    let text = "";
    // Latin-1: header bytes are not UTF-8 text, and only ASCII fields are read.
    for (let k = 0; k < bytes.length; k += 8192) {
      text += String.fromCharCode(...bytes.subarray(k, k + 8192));
    }
    const lines = text.replace(/^[\r\n]+/, "").split(/\r?\n/);
    const start = lines[0];
    let length: string | undefined;
    let codings: string | undefined;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "content-length") {
        if (length !== undefined && length !== value) return this.#error("two Content-Lengths");
        length = value;
      } else if (name === "transfer-encoding") {
        codings = codings === undefined ? value : `${codings},${value}`;
      }
    }
    this.#interim = false;
    if (this.kind === "request") {
      // Any token (RFC 9110 §9.1), as the server takes it: `get`, `M-SEARCH`.
      this.method = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) /.exec(start)?.[1];
      if (!this.method) return this.#error("no request line");
    } else {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(start)?.[1];
      if (!status) return this.#error("no status line");
      const code = Number(status);
      if (code === 101) return "opaque";
      if (code < 200) {
        this.#interim = true;
        return "none";
      }
      if (code === 204 || code === 304 || this.requestMethod() === "HEAD") return "none";
    }
    if (codings !== undefined) {
      const last = codings.split(",").map((c) => c.trim().toLowerCase()).at(-1);
      if (last === "chunked") return "chunked";
      return this.kind === "response" ? "until-close" : this.#error("request not chunked last");
    }
    if (length !== undefined) {
      // Bounded by value, not digits: leading zeros are a length the server reads.
      const n = /^\d+$/.test(length) ? Number(length) : NaN;
      if (!Number.isSafeInteger(n)) return this.#error("bad Content-Length");
      return n;
    }
    return this.kind === "request" ? "none" : "until-close";
  }

  #error(why: string): undefined {
    this.error = why;
    return undefined;
  }

  #fail(why: string, began: boolean): Taken {
    this.error = why;
    this.#state = { at: "opaque" };
    return { n: 0, began };
  }
}
