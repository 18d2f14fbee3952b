/**
 * The agent's version, reported by `tbot version`, in heartbeats and in
 * `tbot_build_info`. Kept equal to `version` in deno.json (a test checks).
 *
 * @module
 */

/** Keybound tbot version. */
export const TBOT_VERSION = "0.1.0";
