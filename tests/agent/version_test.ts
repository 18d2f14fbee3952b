import { TBOT_VERSION } from "../../src/agent/version.ts";
import { assertEquals } from "../_assert.ts";

Deno.test("version: the agent reports the version in deno.json", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assertEquals(TBOT_VERSION, denoJson.version);
});
