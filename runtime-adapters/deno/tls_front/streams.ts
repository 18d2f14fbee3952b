/**
 * Node streams over a `Deno.Conn` for `node:tls` and pipes, and waiting for
 * one event of a stream.
 *
 * @module
 */
import { Duplex } from "node:stream";

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

/** A client connection as {@linkcode duplexOf} makes it. */
export type ClientStream = Duplex & {
  /** While true, no read of the connection is issued. */
  hold(on: boolean): void;
  /** Bytes written to the connection's socket so far. */
  readonly taken: number;
};

/**
 * `conn` as a node stream, for `node:tls` and pipes. Accepting with
 * `Deno.listen` rather than `node:net`'s server: in Deno 2.9.6 the latter
 * stops accepting for good, silently, after one accept fails for want of
 * descriptors (review6 M2). Reads and writes go straight to the connection
 * (a web-stream bridge, `Duplex.fromWeb`, cost ~65 µs more per TLS
 * request/answer exchange than node:net, this ~25 µs). While `hold(true)`,
 * no read of the connection is issued, whoever asks: Deno's `node:tls`
 * socket reads the stream under it whether or not it is paused itself, and
 * its own buffer has no bound (review2 M1, review3 M1). `taken` counts the
 * bytes the connection's socket has accepted from the front (the answer
 * deadline's measure of a client's progress, ./pass_requests.ts).
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
  const readInto = (stream: Duplex) => {
    // One buffer per connection (a read is never outstanding twice); what
    // is pushed is a copy of what was read, usually a few hundred bytes.
    conn.read(buf).then(
      (n) => stream.push(n === null ? null : buf.slice(0, n)),
      (err) => stream.destroy(err),
    );
  };
  const stream = new Duplex({
    read() {
      if (held) wanted = true;
      else readInto(this);
    },
    write(chunk: Uint8Array, _encoding, done) {
      const rest = (at: number) => {
        // A write may take only part of the chunk.
        if (at === chunk.length) return done();
        conn.write(chunk.subarray(at)).then((n) => {
          taken += n;
          rest(at + n);
        }, done);
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
  Object.defineProperty(stream, "taken", { get: () => taken });
  return Object.assign(stream as Duplex & { readonly taken: number }, {
    hold(on: boolean) {
      held = on;
      if (on || !wanted || stream.destroyed) return;
      wanted = false;
      readInto(stream);
    },
  });
}
