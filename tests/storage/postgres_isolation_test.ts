/**
 * PostgresBackend's commit is one statement whose compare-and-swap holds only
 * at SERIALIZABLE, a level it asks for with a startup parameter. A pooler
 * configured to ignore startup parameters (PgBouncer's
 * `ignore_startup_parameters`) drops it silently; the sessions then run at
 * the server's default, read committed. Here a real TCP proxy in front of a
 * real PostgreSQL server does exactly that, and the backend must refuse:
 * at start, and on a commit whose session lost the level later.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals } from "../_assert.ts";
import { postgresMissing, startPostgres } from "../ha/_postgres.ts";
import { ignoreUnless } from "../_tools.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);
const DROPPED = "default_transaction_isolation";

/** Reads exactly `n` bytes (null at end of stream). */
async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const buf = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const r = await conn.read(buf.subarray(got));
    if (r === null) return null;
    got += r;
  }
  return buf;
}

/**
 * A proxy to `port` that, while `drop` is set, removes {@linkcode DROPPED}
 * from each new connection's StartupMessage (protocol 3.0: length, version,
 * then name\0value\0 pairs and a final \0).
 */
function startupParameterProxy(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { drop: false };
  const conns = new Set<Deno.Conn>();
  const relay = async (client: Deno.Conn) => {
    conns.add(client);
    let server: Deno.Conn | undefined;
    try {
      const head = await readExactly(client, 8);
      if (!head) return;
      const view = new DataView(head.buffer);
      const rest = await readExactly(client, view.getInt32(0) - 8);
      if (!rest) return;
      let body = rest;
      if (state.drop) {
        const parts = new TextDecoder().decode(rest).split("\0");
        const kept: string[] = [];
        for (let i = 0; i + 1 < parts.length && parts[i] !== ""; i += 2) {
          if (parts[i] !== DROPPED) kept.push(parts[i], parts[i + 1]);
        }
        body = new TextEncoder().encode(kept.join("\0") + "\0\0");
      }
      const out = new Uint8Array(8 + body.length);
      new DataView(out.buffer).setInt32(0, out.length);
      out.set(head.subarray(4, 8), 4);
      out.set(body, 8);
      server = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.add(server);
      await server.write(out);
      await Promise.all([
        client.readable.pipeTo(server.writable).catch(() => {}),
        server.readable.pipeTo(client.writable).catch(() => {}),
      ]);
    } catch {
      /* a side closed */
    } finally {
      for (const c of [client, server]) {
        if (!c) continue;
        conns.delete(c);
        try {
          c.close();
        } catch { /* closed by its pipe */ }
      }
    }
  };
  (async () => {
    for await (const c of listener) relay(c);
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    state,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already */ }
      }
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a refusal");
}

Deno.test({
  name: "PostgresBackend refuses sessions below SERIALIZABLE (a pooler dropping the level)",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.createDatabase("iso");
    const proxy = startupParameterProxy(pg.port);
    const open = () => pg.backend("iso", { port: proxy.port });
    try {
      await t.step("start-up: one line naming the cause, no backend", async () => {
        proxy.state.drop = true;
        const err = await refusal(open());
        assert(err instanceof KeyboundError, String(err));
        assertEquals(err.code, "CONFIG_INVALID");
        assert(/below SERIALIZABLE/.test(err.message) && !err.message.includes("\n"), err.message);
      });

      await t.step("a commit whose session lost the level writes nothing", async () => {
        proxy.state.drop = false;
        const b = await open();
        try {
          assert(
            (await b.commit({ checks: [], mutations: [{ type: "set", key: ["k"], value: 1 }] })).ok,
          );
          // From now on every new session loses the level; end the ones the pools hold.
          proxy.state.drop = true;
          await pg.psql(
            "iso",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'keybound-auth'",
          );
          let last: unknown;
          for (let i = 0; i < 40; i++) {
            last = await refusal(
              b.commit({ checks: [], mutations: [{ type: "set", key: ["k"], value: 2 }] }),
            ).catch((e) => e);
            // A pooled connection that was terminated fails first (BACKEND_UNAVAILABLE).
            if (last instanceof KeyboundError && last.code === "CONFIG_INVALID") break;
            await new Promise((r) => setTimeout(r, 100));
          }
          assert(last instanceof KeyboundError && last.code === "CONFIG_INVALID", String(last));
          assert(/below SERIALIZABLE/.test(last.message), last.message);
          assertEquals((await b.get(["k"]))?.value, 1, "nothing was written");
        } finally {
          await b.close();
        }
      });
    } finally {
      proxy.close();
    }
  },
});
