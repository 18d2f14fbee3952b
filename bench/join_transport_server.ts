/**
 * The transport and storage floor of a refresh join (run by
 * `bench/join_transport.ts`, not alone): a bare `Deno.serve` on loopback
 * that does, per refresh, what the auth service cannot avoid besides its
 * cryptography and its own logic: read two JSON requests and answer them
 * with bodies of the real sizes, read the keys a refresh reads (two at
 * `begin`, five at `continue`, batched as the Deno KV backend does) and
 * commit the join's one compare-and-swap of the same shape and sizes to a
 * Deno KV file. No hono, no zod, no WebCrypto.
 *
 * `deno run -A --unstable-kv bench/join_transport_server.ts <kv file> <begin reply> <continue reply>`
 * (the replies are files); prints `port <n>` once it listens. `?bot=<n>` names
 * the bot a request is for: each bot's token and instance are its own keys, as
 * in the auth service, so concurrent refreshes of different bots do not conflict.
 *
 * @module
 */
const [path, beginReplyFile, continueReplyFile] = Deno.args;
const kv = await Deno.openKv(path);
const beginReply = await Deno.readTextFile(beginReplyFile);
const continueReply = await Deno.readTextFile(continueReplyFile);
// Stored values of about the sizes the join's commit writes: token, bot
// instance (with its authentication history), used-marker, resume record (the
// result), one audit event.
const token = { spec: "t".repeat(900), status: "s".repeat(300) };
const instance = { history: "i".repeat(3000) };
const audit = { event: "a".repeat(600) };
let n = 0;

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`port ${port}`),
}, async (req) => {
  JSON.parse(await req.text());
  const url = new URL(req.url);
  const bot = url.searchParams.get("bot") ?? "0";
  if (url.pathname.endsWith("/begin")) {
    await kv.getMany([["token", bot], ["locks_changed"]]);
    return new Response(beginReply, { headers: { "content-type": "application/json" } });
  }
  const sid = `s${n++}`;
  const [t, , , i] = await kv.getMany([
    ["token", bot],
    ["locks_changed"],
    ["used", sid],
    ["instance", bot],
    ["bot"],
  ]);
  const r = await kv.atomic()
    .check({ key: ["token", bot], versionstamp: t.versionstamp })
    .check({ key: ["instance", bot], versionstamp: i.versionstamp })
    .check({ key: ["used", sid], versionstamp: null })
    .check({ key: ["ca_revision"], versionstamp: null })
    .set(["token", bot], token)
    .set(["instance", bot], instance)
    .set(["used", sid], { used_at: new Date().toISOString() }, { expireIn: 120_000 })
    .set(["resume", bot], { result: continueReply }, { expireIn: 3_600_000 })
    .set(["audit", sid], audit)
    .commit();
  if (!r.ok) return new Response("conflict", { status: 409 });
  return new Response(continueReply, { headers: { "content-type": "application/json" } });
});
