/**
 * Reading `tbot.yaml`: YAML parsing with the `yaml` package, validation with
 * the zod schema, and errors that name the file, the line and the field path
 * (`tbot.yaml:7: onboarding.bound_keypair: unknown field "registration_secrett"`).
 *
 * @module
 */
import { LineCounter, parseDocument } from "yaml";
import type * as z from "zod";
import { fieldIssue } from "../../util/zod_error.ts";
import { yamlErrorText, yamlLineOf } from "../../util/yaml_line.ts";
import { checkConfig, type TbotConfig, TbotConfigSchema } from "./schema.ts";
import { configError, type ConfigPath, finish, firstIssue, throwProblems } from "./validate.ts";

export { configFromObject, type ConfigPath, throwProblems } from "./validate.ts";

/** Maps a path in the merged config back to the file (`services[i]` may be `outputs[i]`). */
function filePath(file: z.infer<typeof TbotConfigSchema>, path: ConfigPath): ConfigPath {
  const outputs = file.outputs?.length ?? 0;
  if (path[0] === "services" && typeof path[1] === "number") {
    return path[1] < outputs
      ? ["outputs", path[1], ...path.slice(2)]
      : ["services", path[1] - outputs, ...path.slice(2)];
  }
  return path;
}

/**
 * Parses and validates a `tbot.yaml` text. `source` names the file in
 * errors. Throws {@linkcode ConfigError} with `details.path` and
 * `details.line`.
 */
export function parseConfig(text: string, source = "tbot.yaml"): TbotConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line;
    throw configError(source, line, [], `YAML syntax error: ${yamlErrorText(e.message)}`);
  }
  const raw = doc.toJS({ maxAliasCount: 50 });
  if (raw === null || raw === undefined) {
    throw configError(source, undefined, [], "the file is empty");
  }
  const parsed = TbotConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const f = fieldIssue(firstIssue(parsed.error), { zodWording: true });
    throw configError(source, yamlLineOf(doc, f.path, lines), f.path, f.message, f.unknownKey);
  }
  const config = finish(parsed.data);
  throwProblems(
    checkConfig(config).map((p) => ({ ...p, path: filePath(parsed.data, p.path) })),
    source,
    (p) => yamlLineOf(doc, p, lines),
  );
  return config;
}
