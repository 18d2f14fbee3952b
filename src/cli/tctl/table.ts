/**
 * Plain-text tables as tctl prints them: a header, a dashed rule, and
 * left-aligned columns separated by two spaces.
 *
 * @module
 */
import { escapeLogText } from "../../util/log.ts";

/**
 * Formats rows under headers; every line ends with a newline. Cells are
 * escaped ({@linkcode escapeLogText}): values come from the server and may
 * hold whatever an unauthenticated client sent.
 */
export function formatTable(headers: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map(escapeLogText));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd() +
    "\n";
  return line(headers) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}

/** `label: value` lines with aligned values (escaped), skipping empty values. */
export function formatFields(fields: [string, string | undefined][], indent = ""): string {
  const shown = fields.filter(([, v]) => v !== undefined && v !== "") as [string, string][];
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${indent}${(k + ":").padEnd(width)} ${escapeLogText(v)}\n`)
    .join("");
}
