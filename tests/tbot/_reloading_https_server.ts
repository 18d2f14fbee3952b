/**
 * A tiny HTTPS server for the reload hook test: serves `tlscert`/`key` from
 * an identity output and, on SIGHUP, reads them again and restarts on the
 * same port. Arguments: output directory, PID file, state file (it writes
 * `<port> <reloads>` there after each start).
 *
 * @module
 */
const [dir, pidFile, stateFile] = Deno.args;
let port = 0;
let reloads = -1;
let server: Deno.HttpServer;

function start() {
  const cert = Deno.readTextFileSync(`${dir}/tlscert`);
  const key = Deno.readTextFileSync(`${dir}/key`);
  reloads++;
  server = Deno.serve({
    hostname: "127.0.0.1",
    port,
    cert,
    key,
    onListen: (a) => {
      port = a.port;
      Deno.writeTextFileSync(stateFile, `${port} ${reloads}`);
    },
  }, () => new Response("ok\n"));
}

start();
Deno.addSignalListener("SIGHUP", async () => {
  await server.shutdown();
  start();
});
Deno.writeTextFileSync(pidFile, `${Deno.pid}\n`);
