/**
 * SPIFFE ID path templates of `workload_identity` resources
 * (`spec.spiffe.id`), in Teleport's `{{ user.bot_name }}` syntax, and the
 * SPIFFE ID rules (SPIFFE-ID spec §2) every rendered ID must meet.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";

/** Values a template may reference, by variable name. */
export interface SpiffeTemplateValues {
  /** `user.name`: the bot's user, `bot-<bot name>`. */
  "user.name": string;
  /** `user.bot_name`: the bot's name. */
  "user.bot_name": string;
  /** `user.bot_instance_id`: the requesting bot instance. */
  "user.bot_instance_id": string;
}

/** Variables a template may reference. */
export const SPIFFE_TEMPLATE_VARIABLES: readonly (keyof SpiffeTemplateValues)[] = [
  "user.name",
  "user.bot_name",
  "user.bot_instance_id",
];

const EXPRESSION_RE = /\{\{\s*([^{}]*?)\s*\}\}/g;
/** SPIFFE-ID §2.2: path segments use only these characters. */
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
/** SPIFFE-ID §2.1: trust domains are lower case. */
const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
/** SPIFFE-ID §2.3: an ID is at most 2048 bytes. */
const MAX_SPIFFE_ID_BYTES = 2048;

/**
 * Why `path` is not a valid SPIFFE ID path (`/seg/seg…`), or null if it is:
 * segments are non-empty, not `.` or `..`, and use only letters, digits,
 * `.`, `_` and `-`.
 */
export function spiffePathProblem(path: string): string | null {
  if (!path.startsWith("/")) return 'must start with "/"';
  if (path === "/") return "must have at least one path segment";
  for (const segment of path.slice(1).split("/")) {
    if (segment === "") return "must not contain empty segments or a trailing /";
    if (segment === "." || segment === "..") return 'must not contain "." or ".." segments';
    if (!SEGMENT_RE.test(segment)) {
      return `segment "${segment}" may contain only letters, digits, ".", "_" and "-"`;
    }
  }
  return null;
}

/**
 * Why `template` cannot be rendered, or null: every `{{ … }}` must name a
 * variable of {@linkcode SPIFFE_TEMPLATE_VARIABLES}, and the text with each
 * expression replaced by a placeholder must be a valid SPIFFE ID path.
 */
export function spiffeTemplateProblem(template: string): string | null {
  let unknown: string | null = null;
  const probe = template.replace(EXPRESSION_RE, (_m, name: string) => {
    if (!(SPIFFE_TEMPLATE_VARIABLES as readonly string[]).includes(name) && unknown === null) {
      unknown = name;
    }
    return "x";
  });
  if (unknown !== null) {
    return `unsupported template variable "${unknown}" (supported: ${
      SPIFFE_TEMPLATE_VARIABLES.join(", ")
    })`;
  }
  if (probe.includes("{{") || probe.includes("}}")) return "unbalanced {{ }} in template";
  return spiffePathProblem(probe);
}

/**
 * Renders `template` with `values`. Returns the path, or an error string if
 * the template is invalid or a value makes the path invalid (a bot name with
 * `@` or `:` is a valid resource name but not a valid SPIFFE path segment).
 */
export function renderSpiffeTemplate(
  template: string,
  values: SpiffeTemplateValues,
): { path: string } | { error: string } {
  const problem = spiffeTemplateProblem(template);
  if (problem) return { error: problem };
  const path = template.replace(
    EXPRESSION_RE,
    (_m, name: string) => values[name as keyof SpiffeTemplateValues],
  );
  const rendered = spiffePathProblem(path);
  return rendered ? { error: `rendered SPIFFE ID path "${path}" ${rendered}` } : { path };
}

/** The SPIFFE trust domain of a cluster: its name in lower case, which SPIFFE requires. */
export function trustDomainOf(clusterName: string): string {
  const td = clusterName.toLowerCase();
  if (!TRUST_DOMAIN_RE.test(td)) {
    throw new BadParameterError(`cluster name "${clusterName}" is not a valid SPIFFE trust domain`);
  }
  return td;
}

/** `spiffe://<trust domain><path>`; throws `TypeError` if the result is too long. */
export function spiffeId(trustDomain: string, path: string): string {
  const id = `spiffe://${trustDomain}${path}`;
  if (new TextEncoder().encode(id).length > MAX_SPIFFE_ID_BYTES) {
    throw new BadParameterError(`SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  }
  return id;
}
