/**
 * The modules a `tbot start` loads, and nothing else (bench helper): the
 * entry's program module plus what it imports on first use for a oneshot or
 * a daemon with a diagnostics listener, started with a config file (the
 * bench's are; the YAML reader is loaded only for one). Timing this beside a oneshot splits
 * the oneshot into start-up the agent's code cannot avoid (Deno, the npm
 * dependencies, our modules' top-level code) and the agent's own work. With
 * `hold` it prints `ready` and waits, so its resident memory can be read: the
 * floor under the daemon's RSS.
 *
 * @module
 */
await Promise.all([
  import("../runtime-adapters/deno/tbot_main.ts"),
  import("../src/cli/tbot/start.ts"),
  import("../runtime-adapters/deno/trust.ts"),
  import("../src/agent/diag_app.ts"),
  import("../src/agent/config/load.ts"),
]);
if (Deno.args[0] === "hold") {
  console.log("ready");
  setInterval(() => {}, 60_000);
}
