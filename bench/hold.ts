/**
 * An idle Deno process (bench helper): prints `ready` and waits until killed,
 * so the bench can read the resident memory of bare `deno run`.
 *
 * @module
 */
console.log("ready");
setInterval(() => {}, 60_000);
