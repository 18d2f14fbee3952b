/**
 * Resources as YAML files: reading multi-document files into validated
 * resources (every error names the file, the document and the field path, and
 * the line), and writing resources back as YAML or JSON the way tctl prints
 * them.
 *
 * @module
 */
import { Document, isCollection, LineCounter, parseAllDocuments, Scalar, visit } from "yaml";
import { BadParameterError } from "../errors.ts";
import { escapeUnsafeInQuoted, hasUnsafeText } from "../util/log.ts";
import { yamlErrorText, yamlLineOf } from "../util/yaml_line.ts";
import type { Kind } from "./schemas.ts";
import { type AnyResource, formatIssue, validateResource } from "./validate.ts";

/** One resource read from a YAML stream. */
export interface ParsedDocument {
  /** 1-based position of the document in the file (empty documents count too). */
  index: number;
  /**
   * 1-based position in the document's top-level list, when the document is a
   * list of resources (what `tctl get --format json` prints).
   */
  item?: number;
  /** 1-based line where the document starts. */
  line: number;
  /** The validated resource. */
  resource: AnyResource;
}

/** Options for {@linkcode parseResourceYaml}. */
export interface ParseYamlOptions {
  /** Kinds accepted (default: the creatable ones). */
  kinds?: readonly Kind[];
}

/**
 * Parses a (multi-document) YAML text into validated resources. `fileName`
 * only labels errors. Empty documents (a trailing `---`, comments only) are
 * skipped. A document that is a list (JSON is YAML, and `tctl get --format
 * json` prints a JSON array, even of one resource) holds one resource per
 * item, so what `get` prints in either format can be written back. Throws
 * `BadParameterError` like
 * `token.yaml: document 2: spec.bound_keypair.recovery.limit: expected number, received string (line 14)`
 * or, for a list, `tokens.json: document 1, item 3: metadata.x: unknown field "x" (line 9)`;
 * a syntax error names the line and column, and JSON for a document that is
 * one `{…}` or `[…]` (`tokens.json: document 1: invalid JSON at line 4,
 * column 16: …`), else YAML.
 */
export function parseResourceYaml(
  text: string,
  fileName: string,
  options: ParseYamlOptions = {},
): ParsedDocument[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  if (!Array.isArray(docs)) {
    // An empty stream: parseAllDocuments returns an EmptyStream, not a list.
    throw new BadParameterError(`${fileName}: no resources found`);
  }
  const out: ParsedDocument[] = [];
  const seen = new Map<string, ParsedDocument>();
  for (const [i, doc] of docs.entries()) {
    const index = i + 1;
    const where = `${fileName}: document ${index}`;
    const err = doc.errors[0];
    if (err) {
      const pos = lines.linePos(err.pos[0]);
      // JSON is YAML and is read as such; a document that is one `{…}` or `[…]` is
      // called JSON, so a broken `tctl get --format json` file is not called YAML.
      const syntax = isCollection(doc.contents) && doc.contents.flow ? "JSON" : "YAML";
      throw new BadParameterError(
        `${where}: invalid ${syntax} at line ${pos.line}, column ${pos.col}: ${
          yamlErrorText(err.message)
        }`,
        { details: { file: fileName, document: index, line: pos.line, column: pos.col } },
      );
    }
    const value = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    const items: [unknown, number | undefined][] = Array.isArray(value)
      ? value.map((v, j) => [v, j + 1])
      : [[value, undefined]];
    for (const [raw, item] of items) {
      // Paths into the YAML tree: a list item's fields sit under its index.
      const at = (path: readonly (string | number)[]) => item ? [item - 1, ...path] : path;
      const r = validateResource(raw, options.kinds);
      if (!r.ok) {
        const line = yamlLineOf(doc, at(r.issue.path), lines);
        throw new BadParameterError(
          `${where}${item ? `, item ${item}` : ""}: ${formatIssue(r.issue)}${
            line ? ` (line ${line})` : ""
          }`,
          {
            details: {
              file: fileName,
              document: index,
              ...(item ? { item } : {}),
              path: r.issue.path.join("."),
            },
          },
        );
      }
      const line = item
        ? yamlLineOf(doc, [item - 1], lines) ?? 1
        : doc.range
        ? lines.linePos(doc.range[0]).line
        : 1;
      const parsed: ParsedDocument = {
        index,
        ...(item ? { item } : {}),
        line,
        resource: r.resource,
      };
      // One file is one write (tctl create -f): the same resource twice would
      // be written twice, the last copy silently winning.
      const id = `${r.resource.kind}/${r.resource.metadata.name}`;
      const first = seen.get(id);
      if (first) {
        throw new BadParameterError(
          `${fileName}: ${
            documentLabel(parsed)
          }: ${r.resource.kind} "${r.resource.metadata.name}" ` +
            `already appears in ${documentLabel(first)} (line ${line})`,
          { details: { file: fileName, document: index, ...(item ? { item } : {}) } },
        );
      }
      seen.set(id, parsed);
      out.push(parsed);
    }
  }
  if (out.length === 0) throw new BadParameterError(`${fileName}: no resources found`);
  return out;
}

/** Where a resource sits in its file: `document 2` or `document 1, item 3`. */
export function documentLabel(doc: Pick<ParsedDocument, "index" | "item">): string {
  return `document ${doc.index}${doc.item ? `, item ${doc.item}` : ""}`;
}

/**
 * YAML documents separated by `---`, as `tctl get` prints them. A key or
 * string holding a control, bidi or other unsafe character (the log rule,
 * src/util/log.ts) is double-quoted with the character escaped, so a
 * terminal never gets it raw and the text still reads back as the same value.
 */
export function formatResourcesYaml(resources: readonly unknown[]): string {
  return resources.map((r) => {
    const doc = new Document(r);
    visit(doc, {
      Scalar(_key, node) {
        if (typeof node.value === "string" && hasUnsafeText(node.value)) {
          node.type = Scalar.QUOTE_DOUBLE;
        }
      },
    });
    return escapeUnsafeInQuoted(doc.toString({ lineWidth: 0 }));
  }).join("---\n");
}

/**
 * A JSON array (always an array, even for one resource), as `tctl get
 * --format=json` prints it; unsafe characters in strings as `\uXXXX`.
 */
export function formatResourcesJson(resources: readonly unknown[]): string {
  return escapeUnsafeInQuoted(JSON.stringify(resources, null, 4)) + "\n";
}
