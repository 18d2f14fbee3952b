/**
 * One request at a time from a client connection to the server behind the
 * front, each within its deadline.
 *
 * @module
 */
import type net from "node:net";
import type { Duplex } from "node:stream";
import type { ClientStream } from "./streams.ts";
import { Http1Framing } from "../../../src/server/rate_limit/http1_framing.ts";
import { concatBytes } from "../../../src/util/encoding.ts";

const CR = 13;
const LF = 10;

/** The front's answer to a request it cannot follow; the connection then ends. */
const REFUSED = new TextEncoder().encode(
  "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
);

/**
 * Passes the client's plaintext (`inner`) to the server (`upstream`) one
 * request at a time: the next request is held, and the client no longer
 * read, until the server has answered the one before (its last answer byte
 * read from the loopback connection). A client that pipelines requests and
 * never reads its answers then has at most one answer in flight between the
 * server and the front, not as many as the loopback's kernel buffers and the
 * server's write buffer hold (review6 S2). Normal clients do not pipeline;
 * a pipelining one waits a loopback round trip more per request, which the
 * server (one request at a time per connection) would make it wait anyway.
 * Each request must be whole within `deadlineMs` of its first byte (`late`
 * is called otherwise); the clock stops while the server is not reading.
 * A request the framing cannot follow is not passed on, and the client is
 * read no more: the front answers 400 (or, if part of the request went on
 * already, cuts) and the connection ends. Passed through unheld, one such
 * request let every later one through as before (review2 S1); passed on
 * with what was read with it, the pipelined requests in that read reached
 * the server untagged (review-front S3). Each answer must be taken by the client, handed
 * wholly to its socket, within `answer.graceMs` of the first write of it
 * that waited for room in the socket, plus 1 s per
 * `answer.minBytesPerSecond` bytes the socket took after that (`slow` is
 * called otherwise; ClientStream.taken). Answers not taken share one clock.
 * An answer the framing cannot follow, or a protocol switch, ends the
 * holding and both deadlines.
 */
export function passRequests(
  inner: Duplex,
  source: ClientStream,
  upstream: net.Socket,
  o: {
    /** A header line to add after each request's start line (the client's address). */
    tag?: Uint8Array;
    deadlineMs: number;
    late: () => void;
    /** A request was whole in time. */
    requestInTime: () => void;
    answer: { graceMs: number; minBytesPerSecond: number };
    slow: () => void;
    /** The client took every answer it was sent. */
    answerTaken: () => void;
    allAnswered: () => void;
  },
): { holding: () => boolean; pending: () => boolean | undefined } {
  // Over TLS, pausing the TLS socket does not stop it reading its connection
  // (`source`): the records kept coming and piled up inside the TLS layer, so
  // a client that pipelined and never read grew the process without bound
  // (review2 M1: 81 MB sent, +106 MB RSS). Both are paused and resumed
  // together; without TLS they are the same stream.
  const stop = () => {
    inner.pause();
    source.pause();
    source.hold(true);
  };
  /** A request the framing cannot follow was passed on: the client is read no more. */
  let lost = false;
  const go = () => {
    if (lost) return;
    source.hold(false);
    inner.resume();
    source.resume();
  };
  const requests = new Http1Framing("request");
  const answers = new Http1Framing("response", () => requests.method);
  /** Requests begun (passed on in part or whole) and not answered yet. */
  let unanswered = 0;
  /** Bytes read from the client and not passed on yet. */
  let waiting: Uint8Array | undefined;
  /** When the request under way began (its first byte was passed on). */
  let since: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** The start line of the request under way is not wholly passed on yet (o.tag goes after it). */
  let inStartLine = false;
  /** Passes `bytes` (a piece `take` returned, `began` its) on, with o.tag after the start line. */
  const forward = (bytes: Uint8Array, began: boolean) => {
    if (!o.tag) return void upstream.write(bytes);
    let from = 0;
    if (began) {
      inStartLine = true;
      // Blank lines before a request begin none (the start line's first byte is neither).
      while (bytes[from] === CR || bytes[from] === LF) from++;
    }
    const lf = inStartLine ? bytes.indexOf(LF, from) : -1;
    if (lf < 0) return void upstream.write(bytes);
    inStartLine = false;
    upstream.write(concatBytes(bytes.subarray(0, lf + 1), o.tag, bytes.subarray(lf + 1)));
  };
  const check = () => {
    timer = undefined;
    if (since === undefined || answers.opaque || inner.destroyed) return;
    // The server is not reading (it is busy, or its answers wait for the
    // client): the rest of the request may be in the client's socket.
    if (upstream.writableNeedDrain) since = performance.now();
    const left = since + o.deadlineMs - performance.now();
    if (left > 0) timer = setTimeout(check, left);
    else o.late();
  };
  const pass = () => {
    if (upstream.destroyed || upstream.writableEnded) {
      // The server's side is gone: what the client sends now is discarded,
      // and read on so that its close is seen.
      waiting = undefined;
      go();
      return;
    }
    while (waiting?.length) {
      const answered = !requests.inMessage && unanswered > 0 && !answers.opaque;
      if (upstream.writableNeedDrain || answered) {
        stop();
        return;
      }
      const t = requests.take(waiting);
      if (t.began) {
        unanswered++;
        since = performance.now();
        timer ??= setTimeout(check, o.deadlineMs);
      }
      if (requests.opaque) {
        // Not one byte more goes to the server, nor is read: what was read
        // with it may hold pipelined requests the framing cannot place, and
        // passed on they reached the server with no tag of the front, with
        // whatever client token they carried (review-front S3). Refused
        // here if nothing of it went on (no answer to it can have begun);
        // otherwise cut. Either way the server's side ends, and with it the
        // client's.
        lost = true;
        waiting = undefined;
        since = undefined;
        stop();
        if (t.began) unanswered--;
        // A microtask later: called from the upstream `data` handler, the
        // chunk ending the answer to an earlier request has not gone on to
        // the client yet (the pipe's listener runs after), and the 400 must
        // follow it (review-ff SF1).
        const refuse = t.began;
        queueMicrotask(() => {
          if (refuse && !inner.destroyed) inner.write(REFUSED);
          upstream.destroy();
        });
        return;
      }
      if (t.n) forward(waiting.subarray(0, t.n), t.began);
      waiting = waiting.subarray(t.n);
      if (t.ended) {
        since = undefined;
        o.requestInTime();
      }
    }
    waiting = undefined;
    if (!upstream.writableNeedDrain) go();
  };
  inner.on("data", (chunk: Uint8Array) => {
    waiting = waiting?.length ? concatBytes(waiting, chunk) : chunk;
    pass();
  });
  upstream.on("drain", pass);
  /**
   * When the answer clock started: an answer's first byte came while the
   * client had taken everything before it (several answers not taken share
   * one clock and their bytes); undefined while it does not run. The time
   * allowed runs from the clock's first write that waited for room
   * (`source.waitedSince`), not from this.
   */
  let answerSince: number | undefined;
  let answerTimer: ReturnType<typeof setTimeout> | undefined;
  /** An answer is under way, or bytes of one are still in the front's buffers. */
  const untaken = () => answers.inMessage || source.writableLength > 0 || inner.writableLength > 0;
  const checkAnswer = () => {
    answerTimer = undefined;
    if (answerSince === undefined || answers.opaque || inner.destroyed) return;
    if (!untaken()) {
      answerSince = undefined;
      o.answerTaken();
      return;
    }
    // Until a write waits for room, the socket takes the answer as fast as
    // the front hands it on: the time allowed runs from that first wait.
    const since = source.waitedSince ?? performance.now();
    const allowed = o.answer.graceMs + source.taken * 1000 / o.answer.minBytesPerSecond;
    const left = since + allowed - performance.now();
    if (left > 0) answerTimer = setTimeout(checkAnswer, left);
    else o.slow();
  };
  // Before the pipe's own listener (installed after this function): the
  // buffers do not hold this chunk yet.
  upstream.on("data", (chunk: Uint8Array) => {
    // The client is gone: its close cleared the clocks, and nothing may arm
    // them again (the front reads the rest of the server's answer to discard it).
    if (inner.destroyed) return;
    if (answerSince === undefined || !untaken()) {
      if (answerSince !== undefined) o.answerTaken();
      answerSince = performance.now();
      source.countFromWait();
      // A timer of the clock before may be armed far ahead, for what that
      // clock's answers were allowed (review-front S2).
      clearTimeout(answerTimer);
      answerTimer = setTimeout(checkAnswer, o.answer.graceMs);
    }
    let rest = chunk;
    let answered = false;
    while (rest.length && !answers.opaque) {
      const t = answers.take(rest);
      rest = rest.subarray(t.n);
      if (t.ended && !t.ended.interim) {
        unanswered = Math.max(0, unanswered - 1);
        answered = true;
      }
    }
    // The answer to a request not followed: the connection ends (after this
    // chunk has gone on to the client; the server's close ends the client's).
    if (lost && answered) queueMicrotask(() => upstream.destroy());
    else if (unanswered === 0 || answers.opaque) pass();
    if (answered && unanswered === 0 && !requests.inMessage && !waiting?.length) o.allAnswered();
  });
  inner.once("close", () => {
    clearTimeout(timer);
    clearTimeout(answerTimer);
    // Taken before the clock's timer came (a connection that closes after its answer).
    if (answerSince !== undefined && !untaken()) o.answerTaken();
  });
  // Held since the handshake (startFront): read from now on.
  go();
  return {
    holding: () => !!waiting?.length,
    // Undefined while the answers cannot be followed.
    pending: () =>
      answers.opaque ? undefined : unanswered > 0 || requests.inMessage || !!waiting?.length,
  };
}
