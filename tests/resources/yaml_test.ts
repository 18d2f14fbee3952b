import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { BadParameterError } from "../../src/errors.ts";
import {
  formatResourcesJson,
  formatResourcesYaml,
  parseResourceYaml,
} from "../../src/resources/yaml.ts";
import type { Token } from "../../src/resources/schemas.ts";
import { SEED_BOT_YAML, SEED_TOKEN_YAML } from "../_seed_guide.ts";

function parseError(text: string, file = "token.yaml"): string {
  return assertThrows(() => parseResourceYaml(text, file), BadParameterError).message;
}

Deno.test("the seed guide's bot.yaml and token-example.yaml parse", () => {
  const [bot] = parseResourceYaml(SEED_BOT_YAML, "bot.yaml");
  assertEquals(bot.resource.kind, "bot");
  assertEquals(bot.resource.metadata.name, "example");
  const [doc] = parseResourceYaml(SEED_TOKEN_YAML, "token-example.yaml");
  const token = doc.resource as Token;
  assertEquals(token.spec.bound_keypair.recovery, { limit: 1, mode: "standard" });
  assertEquals(token.spec.bound_keypair.onboarding, {});
  assertEquals(token.status, undefined);
});

Deno.test("multi-document files keep document order and index; empty documents are skipped", () => {
  const docs = parseResourceYaml(
    `---\n# only a comment\n---\n${SEED_BOT_YAML}---\n${SEED_TOKEN_YAML}---\n`,
    "all.yaml",
  );
  assertEquals(docs.map((d) => [d.index, d.resource.kind]), [[2, "bot"], [3, "token"]]);
});

Deno.test("a wrong type names file, document index, field path and line", () => {
  const bad = SEED_TOKEN_YAML.replace("limit: 1", 'limit: "1"');
  const msg = parseError(`${SEED_BOT_YAML}---\n${bad}`);
  assertStringIncludes(
    msg,
    "token.yaml: document 2: spec.bound_keypair.recovery.limit: expected number, received string",
  );
  const text = `${SEED_BOT_YAML}---\n${bad}`;
  const line = text.split("\n").findIndex((l) => l.includes("limit:")) + 1;
  assertStringIncludes(msg, `(line ${line})`);
});

Deno.test("a missing required field names its path", () => {
  const msg = parseError(SEED_TOKEN_YAML.replace("  bot_name: example\n", ""));
  assertStringIncludes(msg, "token.yaml: document 1: spec.bot_name: required field is missing");
});

Deno.test("an unknown field is refused with its path", () => {
  const msg = parseError(
    SEED_TOKEN_YAML.replace("      limit: 1", "      limit: 1\n      limt: 2"),
  );
  assertStringIncludes(msg, "document 1: spec.bound_keypair.recovery.limt: unknown field");
  assertStringIncludes(msg, "(line 15)");
});

Deno.test("an invalid recovery mode and join method are refused", () => {
  assertStringIncludes(
    parseError(SEED_TOKEN_YAML.replace("mode: standard", "mode: lenient")),
    "spec.bound_keypair.recovery.mode:",
  );
  assertStringIncludes(
    parseError(SEED_TOKEN_YAML.replace("join_method: bound_keypair", "join_method: token")),
    "spec.join_method: unsupported join method",
  );
});

Deno.test("unknown and read-only kinds are refused naming the kind field", () => {
  assertStringIncludes(
    parseError("kind: user\nversion: v2\nmetadata: {name: x}\n"),
    'kind: unsupported kind "user"',
  );
  assertStringIncludes(
    parseError("kind: bot_instance\nversion: v1\nmetadata: {name: a/b}\n"),
    "kind: bot_instance resources are created by joins",
  );
  assertStringIncludes(
    parseError("version: v1\nmetadata: {name: x}\n"),
    "document 1: kind: required field is missing",
  );
  // A list holds one resource per item (what `tctl get --format json` prints).
  assertStringIncludes(
    parseError("- a\n- b\n"),
    "document 1, item 1: (root): expected a resource",
  );
  assertStringIncludes(parseError("[]\n"), "no resources found");
});

Deno.test("YAML syntax errors include the line", () => {
  const msg = parseError(`${SEED_BOT_YAML}---\nkind: token\nspec:\n  roles: [Bot\n`);
  assertStringIncludes(msg, "token.yaml: document 2: invalid YAML at line");
  // The broken flow list sits 3 to 5 lines below the bot document.
  const botLines = SEED_BOT_YAML.split("\n").length - 1;
  const line = Number(/line (\d+), column/.exec(msg)?.[1]);
  assert(line >= botLines + 3 && line <= botLines + 5, msg);
});

Deno.test("a JSON syntax error is called JSON, with line and column; YAML stays YAML", () => {
  const json = '[\n  {\n    "kind": "role",\n    "version": "v7"\n    "metadata": {}\n  }\n]\n';
  const err = assertThrows(() => parseResourceYaml(json, "roles.json"), BadParameterError);
  assertEquals(
    err.message,
    "roles.json: document 1: invalid JSON at line 5, column 5: Missing , between flow map items",
  );
  assertEquals(err.details, { file: "roles.json", document: 1, line: 5, column: 5 });
  // Each document decides: a JSON document after a YAML one.
  const mixed = `${SEED_BOT_YAML}---\n{"kind": "role",, "version": "v7"}\n`;
  assertStringIncludes(parseError(mixed), "token.yaml: document 2: invalid JSON at line");
  assertStringIncludes(
    parseError("kind: role\nmetadata: {name: a\n"),
    "token.yaml: document 1: invalid YAML at line 3, column 1: ",
  );
});

Deno.test("an empty file is refused", () => {
  assertStringIncludes(parseError("", "empty.yaml"), "empty.yaml: no resources found");
  assertStringIncludes(parseError("# nothing\n", "empty.yaml"), "empty.yaml: no resources found");
});

Deno.test("YAML and JSON output round-trip", () => {
  const docs = parseResourceYaml(`${SEED_BOT_YAML}---\n${SEED_TOKEN_YAML}`, "all.yaml").map((d) =>
    d.resource
  );
  const yaml = formatResourcesYaml(docs);
  assertEquals(yaml.split("\n").filter((l) => l === "---").length, 1);
  assertEquals(parseResourceYaml(yaml, "out.yaml").map((d) => d.resource), docs);
  const json = JSON.parse(formatResourcesJson([docs[1]]));
  assert(Array.isArray(json) && json.length === 1, "JSON output is always an array");
  assertEquals(json[0], docs[1]);
});

Deno.test("long authorized_keys values are not folded in YAML output", () => {
  const key = "ssh-ed25519 " + "A".repeat(200);
  const out = formatResourcesYaml([{ spec: { key } }]);
  assertStringIncludes(out, `key: ${key}\n`);
});
