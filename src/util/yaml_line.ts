/**
 * Where a field sits in a YAML document, for errors that name the line; and
 * the one-line form of a YAML parser error.
 *
 * @module
 */
import { type Document, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from "yaml";

/**
 * The line (1-based) of the deepest node along `path` that exists (a map
 * entry's key line), so a missing field points at its parent; undefined if
 * the document is empty.
 *
 * @example
 * ```ts
 * import { LineCounter, parseDocument } from "yaml";
 * import { yamlLineOf } from "./yaml_line.ts";
 * const lines = new LineCounter();
 * const doc = parseDocument("a:\n  b: 1\n", { lineCounter: lines });
 * yamlLineOf(doc, ["a", "b"], lines); // 2
 * ```
 */
export function yamlLineOf(
  doc: Document,
  path: readonly (string | number)[],
  lines: LineCounter,
): number | undefined {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0];
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === part);
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof part === "number") {
      const item = node.items[part] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}

/** The first line of a YAML parser error, without its "at line L, column C" tail. */
export function yamlErrorText(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}
