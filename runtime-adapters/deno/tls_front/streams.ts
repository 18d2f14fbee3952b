/**
 * Node streams over a `Deno.Conn` for `node:tls` and pipes, and waiting for
 * one event of a stream.
 *
 * @module
 */
import { Duplex } from "node:stream";

/**
 * Resolves at `event` of `emitter`; rejects at its error, or at its close
 * before the event (a handshake or connect that never completes).
 */
export function once(emitter: Duplex, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => {
      emitter.off("error", fail);
      emitter.off("close", gone);
      resolve();
    };
    const fail = (err: Error) => {
      emitter.off(event, ok);
      emitter.off("close", gone);
      reject(err);
    };
    const gone = () => fail(new Error(`closed before ${event}`));
    emitter.once(event, ok);
    emitter.once("error", fail);
    emitter.once("close", gone);
  });
}

/**
 * Microtasks after which a write not settled is one that waited for room in
 * the socket. A write the socket takes at once settles after 2 (Deno 2.9.6:
 * the write op is polled as it is called), one that must wait only on a
 * later turn of the event loop, after every queued microtask: which it is
 * does not depend on timing or load.
 */
const WRITE_SETTLE_TICKS = 16;

/** A client connection as {@linkcode duplexOf} makes it. */
export type ClientStream = Duplex & {
  /** While true, no read of the connection is issued. */
  hold(on: boolean): void;
  /**
   * Bytes the client is known to have taken: those its socket accepted from
   * the front since the first write, after the last {@linkcode ClientStream.countFromWait},
   * that had to wait for room.
   */
  readonly taken: number;
  /** When (performance.now) that write began, or undefined while none has waited. */
  readonly waitedSince: number | undefined;
  /** Counts `taken` from 0 again, from the next write that has to wait. */
  countFromWait(): void;
};

/**
 * `conn` as a node stream, for `node:tls` and pipes. Accepting with
 * `Deno.listen` rather than `node:net`'s server: in Deno 2.9.6 the latter
 * stops accepting for good, silently, after one accept fails for want of
 * descriptors (review6 M2). Reads and writes go straight to the connection
 * (a web-stream bridge, `Duplex.fromWeb`, cost ~65 µs more per TLS
 * request/answer exchange than node:net, this ~25 µs). While `hold(true)`,
 * at most one read of the connection (one buffer) is issued and what it
 * returns is kept until release, whoever asks for more: Deno's `node:tls`
 * socket reads the stream under it whether or not it is paused itself, and
 * its own buffer has no bound (review2 M1, review3 M1). `taken` counts the
 * bytes the connection's socket accepted from the front once a write had
 * to wait for room, i.e. once its send buffer was full: what it accepts
 * from then on left the buffer for the client's side (the answer
 * deadline's measure of a client's progress, ./pass_requests.ts). Counting
 * every accepted byte credited a client that read nothing with the whole
 * buffer, up to 4 MB (review-front S3). The send buffer may still grow
 * after it first filled (Linux sizes it from the congestion window, up to
 * tcp_wmem's maximum): that growth counts too.
 */
export function duplexOf(conn: Deno.Conn): ClientStream {
  // Held for the connection's life (an idle connection always has a read
  // outstanding): 4 KB rather than a TLS record's 16 KB saves ~15 KB of RSS
  // per connection (2,000 idle ones: +141 MB instead of +175 MB); requests
  // are a few hundred bytes to a few KB, a larger record takes a few reads.
  const buf = new Uint8Array(4096);
  let held = false;
  /** A read was asked for while held: issued on release. */
  let wanted = false;
  let taken = 0;
  /** When the first write that waited for room since the last countFromWait began. */
  let waitedSince: number | undefined;
  /** A read of the connection is outstanding. */
  let reading = false;
  /** What a read returned while held (null: the end), pushed on release; undefined: none. */
  let stash: Uint8Array | null | undefined;
  const readInto = (stream: Duplex) => {
    reading = true;
    // One buffer per connection (a read is never outstanding twice); what
    // is pushed is a copy of what was read, usually a few hundred bytes.
    conn.read(buf).then(
      (n) => {
        reading = false;
        const chunk = n === null ? null : buf.slice(0, n);
        if (held) stash = chunk;
        else stream.push(chunk);
      },
      (err) => {
        reading = false;
        stream.destroy(err);
      },
    );
  };
  /**
   * While held, one read stays outstanding (none more once it returned
   * something, kept until release: at most one buffer's worth), so that a
   * peer's reset is seen at once: with none, a held connection saw its
   * client's reset only when the held answer met it, or at the deadline or
   * idle limit, and kept its slot of the source's cap until then (review3 N1).
   */
  const watch = (stream: Duplex) => {
    if (!reading && stash === undefined && !stream.destroyed) readInto(stream);
  };
  const stream = new Duplex({
    read() {
      if (held) {
        wanted = true;
        watch(this);
        // A read still outstanding (one issued while held) pushes when it returns.
      } else if (!reading) readInto(this);
    },
    write(chunk: Uint8Array, _encoding, done) {
      const rest = (at: number) => {
        // A write may take only part of the chunk.
        if (at === chunk.length) return done();
        let settled = false;
        const began = performance.now();
        conn.write(chunk.subarray(at)).then((n) => {
          settled = true;
          if (waitedSince !== undefined) taken += n;
          rest(at + n);
        }, done);
        let ticks = 0;
        const tick = () => {
          if (settled) return;
          if (++ticks < WRITE_SETTLE_TICKS) queueMicrotask(tick);
          else waitedSince ??= began;
        };
        queueMicrotask(tick);
      };
      rest(0);
    },
    final(done) {
      conn.closeWrite().then(() => done(), done);
    },
    destroy(err, done) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      done(err);
    },
  });
  // A getter (Object.assign would copy its value once).
  Object.defineProperties(stream, {
    taken: { get: () => taken },
    waitedSince: { get: () => waitedSince },
  });
  return Object.assign(stream as Duplex & Pick<ClientStream, "taken" | "waitedSince">, {
    countFromWait() {
      taken = 0;
      waitedSince = undefined;
    },
    hold(on: boolean) {
      held = on;
      if (on) return watch(stream);
      if (stream.destroyed) return;
      if (stash !== undefined) {
        const chunk = stash;
        stash = undefined;
        wanted = false;
        stream.push(chunk);
      } else if (wanted && !reading) {
        wanted = false;
        readInto(stream);
      }
    },
  });
}
