/**
 * Plain-text tables as tctl prints them: a header, a dashed rule, and
 * left-aligned columns separated by two spaces.
 *
 * @module
 */

/** Formats rows under headers; every line ends with a newline. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd() +
    "\n";
  return line(headers) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}

/** `label: value` lines with aligned values, skipping empty values. */
export function formatFields(fields: [string, string | undefined][], indent = ""): string {
  const shown = fields.filter(([, v]) => v !== undefined && v !== "") as [string, string][];
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${indent}${(k + ":").padEnd(width)} ${v}\n`).join("");
}
