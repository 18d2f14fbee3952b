/**
 * A child for front_dir_owner_test.ts (bundled: it runs as another user,
 * who cannot read this user's module cache): serves "ok" through
 * serveService with the socket in the temporary directory's fallback,
 * prints its port, logs JSON lines to stderr, and stops on SIGTERM.
 */
import { onStopSignal, serveService } from "../../runtime-adapters/deno/serve.ts";
import { createLogger } from "../../src/util/log.ts";

const server = await serveService({ fetch: () => new Response("ok") }, {
  hostname: "127.0.0.1",
  port: 0,
  proxyFrom: ["127.0.0.2"],
  socketDir: undefined,
  log: createLogger({ format: "json" }),
});
console.log(JSON.stringify({ port: server.addr.port }));
onStopSignal(() => server.shutdown());
await server.finished;
