import type { Output } from "../../src/agent/outputs/output.ts";

/** An output that writes nothing, for tests of what wraps an output (sharing, hooks). */
export const noopOutput: Output = {
  name: "app",
  type: "identity",
  describe: () => "/o",
  init: () => Promise.resolve(),
  write: () => Promise.resolve(),
};
