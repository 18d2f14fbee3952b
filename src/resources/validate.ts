/**
 * Validation of one resource object by its `kind`, shared by tctl (which
 * reads YAML files) and the auth service (which receives JSON). Failures name
 * the field path so callers can point at the exact spot.
 *
 * @module
 */
import { checkJsonLimits } from "./limits.ts";
import { BadParameterError } from "../errors.ts";
import { fieldIssue, formatPath } from "../util/zod_error.ts";
import type * as z from "zod";
import {
  ALL_KINDS,
  type AnyResource,
  CertificateLogins,
  CertificateRoleName,
  CREATABLE_KINDS,
  type CreatableKind,
  type CreatableResource,
  type Kind,
  NewBotName,
  type ResourceOf,
  schemaOf,
} from "./schemas.ts";

export type { AnyResource, CreatableResource };

/** One validation failure: where (path segments) and what. */
export interface ResourceIssue {
  /** Field path, e.g. `["spec", "bound_keypair", "recovery", "limit"]`. */
  path: (string | number)[];
  /** What is wrong, without the path. */
  message: string;
}

/** Result of {@linkcode validateResource}. */
export type ValidationResult<T> =
  | { ok: true; resource: T }
  | { ok: false; issue: ResourceIssue };

/** True if `kind` is one of the kinds the API serves. */
export function isKind(kind: string): kind is Kind {
  return (ALL_KINDS as readonly string[]).includes(kind);
}

/** `path: message`, the form every resource error uses. */
export function formatIssue(issue: ResourceIssue): string {
  return `${formatPath(issue.path)}: ${issue.message}`;
}

/**
 * Validates a resource object against the schema of its `kind`. Only kinds in
 * `allowed` are accepted (default: the creatable ones), so a `bot_instance`
 * document is refused with a message saying why.
 */
export function validateResource(
  raw: unknown,
  allowed: readonly Kind[] = Object.keys(CREATABLE_KINDS) as CreatableKind[],
): ValidationResult<AnyResource> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return {
      ok: false,
      issue: { path: [], message: "expected a resource (a mapping with kind, version, metadata)" },
    };
  }
  const kind = (raw as { kind?: unknown }).kind;
  if (kind === undefined) {
    return {
      ok: false,
      issue: {
        path: ["kind"],
        message: `required field is missing (one of: ${allowed.join(", ")})`,
      },
    };
  }
  if (typeof kind !== "string" || !isKind(kind)) {
    return {
      ok: false,
      issue: {
        path: ["kind"],
        message: `unsupported kind ${JSON.stringify(kind)} (supported: ${allowed.join(", ")})`,
      },
    };
  }
  if (!allowed.includes(kind)) {
    return {
      ok: false,
      issue: {
        path: ["kind"],
        message: kind === "bot_instance"
          ? "bot_instance resources are created by joins and cannot be written"
          : `kind "${kind}" is not accepted here (supported: ${allowed.join(", ")})`,
      },
    };
  }
  const tooBig = checkJsonLimits(raw);
  if (tooBig) return { ok: false, issue: tooBig };
  const r = schemaOf(kind).safeParse(raw);
  if (!r.success) return { ok: false, issue: fieldIssue(r.error.issues[0]) };
  return { ok: true, resource: r.data };
}

/** Like {@linkcode validateResource} but throws a `BadParameterError` with `details.path`. */
export function parseResource(raw: unknown, allowed?: readonly Kind[]): AnyResource {
  const r = validateResource(raw, allowed);
  if (r.ok) return r.resource;
  throw new BadParameterError(formatIssue(r.issue), {
    details: { path: formatPath(r.issue.path) },
  });
}

/**
 * {@linkcode parseResource} for one known kind, typed as that kind: callers
 * that build a resource (tctl's `bots add`, `lock`) need no cast.
 */
export function parseResourceOf<K extends Kind>(kind: K, raw: unknown): ResourceOf<K> {
  // validateResource accepted only `kind`, so the value matched that kind's schema.
  return parseResource(raw, [kind]) as ResourceOf<K>;
}

/** The issue of `schema` with `value` at `path`, the value's length in front; null if it passes. */
function lengthIssue(
  schema: z.ZodType<string>,
  value: string,
  path: (string | number)[],
): ResourceIssue | null {
  const r = schema.safeParse(value);
  return r.success
    ? null
    : { path, message: `${value.length} characters: ${r.error.issues[0].message}` };
}

/**
 * The issue of {@linkcode CertificateLogins} with `logins` at `path` when they
 * differ from `stored` (what the resource holds now); null if they pass or
 * are unchanged, so a resource stored earlier with more can be written back.
 */
function loginsIssue(
  logins: string[],
  stored: string[] | undefined,
  path: (string | number)[],
): ResourceIssue | null {
  if (stored && logins.length === stored.length && logins.every((l, i) => l === stored[i])) {
    return null;
  }
  const r = CertificateLogins.safeParse(logins);
  if (r.success) return null;
  const distinct = new Set(logins.filter((l) => !l.includes("{{"))).size;
  return { path, message: `${distinct} distinct logins: ${r.error.issues[0].message}` };
}

/** The values of a bot's `logins` trait(s). */
function loginTraits(bot: CreatableResource & { kind: "bot" }): string[] {
  return bot.spec.traits.filter((t) => t.name === "logins").flatMap((t) => t.values);
}

/**
 * Where a write would put a name into certificate subjects past X.509's bound
 * (schemas.ts: `NewBotName`, `CertificateRoleName`), given what is stored
 * under its name now (`existing`, null when the write creates it); null when
 * nothing does; likewise a role or a bot's `logins` trait granting more
 * logins than one SSH certificate carries. Only what the write brings in is
 * held to the bounds: a bot or role stored earlier with a longer name, a role
 * a bot already carries and logins as stored can still be written back
 * (docs/operations.md, "Bot and role names").
 */
export function certificateNameIssue(
  incoming: CreatableResource,
  existing: CreatableResource | null,
): ResourceIssue | null {
  switch (incoming.kind) {
    case "bot": {
      if (!existing) {
        const issue = lengthIssue(NewBotName, incoming.metadata.name, ["metadata", "name"]);
        if (issue) return issue;
      }
      const stored = existing?.kind === "bot" ? existing : null;
      const kept = new Set(stored?.spec.roles ?? []);
      for (const [i, role] of incoming.spec.roles.entries()) {
        if (kept.has(role)) continue;
        const issue = lengthIssue(CertificateRoleName, role, ["spec", "roles", i]);
        if (issue) return issue;
      }
      return loginsIssue(
        loginTraits(incoming),
        stored ? loginTraits(stored) : undefined,
        ["spec", "traits"],
      );
    }
    case "role": {
      const issue = existing
        ? null
        : lengthIssue(CertificateRoleName, incoming.metadata.name, ["metadata", "name"]);
      const stored = existing?.kind === "role" ? existing.spec.allow?.logins ?? [] : undefined;
      return issue ??
        loginsIssue(incoming.spec.allow?.logins ?? [], stored, ["spec", "allow", "logins"]);
    }
    default:
      return null;
  }
}
