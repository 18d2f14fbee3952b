/**
 * What a bot may ask the workload endpoints for, decided from its roles as
 * Teleport does:
 *
 * - SSH host certificates need a role rule allowing `create` on `host_cert`
 *   (`allow.rules: [{resources: [host_cert], verbs: [create]}]`), and no deny
 *   rule matching it.
 * - A `workload_identity` is usable if some role's
 *   `allow.workload_identity_labels` matches its labels and no role's
 *   `deny.workload_identity_labels` does.
 *
 * Roles are read fresh on every call, so revoking a role takes effect at the
 * bot's next renewal.
 *
 * @module
 */
import * as z from "zod";
import { AccessDeniedError } from "../../errors.ts";
import type { Role } from "../../resources/schemas.ts";
import type { ServerContext } from "../context.ts";
import { getResource } from "../resources/mod.ts";

/** `rules` entries of a role, read leniently: the Role schema passes them through unchecked. */
const Rules = z.array(
  z.object({ resources: z.array(z.string()).default([]), verbs: z.array(z.string()).default([]) }),
).catch([]);

/** `workload_identity_labels`: label → value or values; `*` is a wildcard for either. */
const LabelSelector = z.record(z.string(), z.union([z.string(), z.array(z.string())])).catch({});

/** The roles of bot `botName` that exist; a bot that no longer exists is denied. */
export async function botRoles(ctx: ServerContext, botName: string): Promise<Role[]> {
  const bot = await getResource(ctx, "bot", botName);
  if (!bot) throw new AccessDeniedError(`bot "${botName}" no longer exists`);
  const roles: Role[] = [];
  for (const name of bot.resource.spec.roles) {
    const role = await getResource(ctx, "role", name);
    if (role) roles.push(role.resource);
    else ctx.log.warn("bot references a role that does not exist", { bot: botName, role: name });
  }
  return roles;
}

function ruleMatches(rules: unknown, resource: string, verb: string): boolean {
  return Rules.parse(rules ?? []).some((r) =>
    (r.resources.includes("*") || r.resources.includes(resource)) &&
    (r.verbs.includes("*") || r.verbs.includes(verb))
  );
}

/** Throws `ACCESS_DENIED` unless the roles allow creating SSH host certificates. */
export function assertMayCreateHostCert(roles: Role[], botName: string): void {
  if (roles.some((r) => ruleMatches(r.spec.deny?.rules, "host_cert", "create"))) {
    throw new AccessDeniedError(
      `bot "${botName}" may not create SSH host certificates: a role denies it`,
    );
  }
  if (!roles.some((r) => ruleMatches(r.spec.allow?.rules, "host_cert", "create"))) {
    throw new AccessDeniedError(
      `bot "${botName}" may not create SSH host certificates: ` +
        "a role needs allow.rules with resources [host_cert] and verbs [create]",
    );
  }
}

/** True if every label of `selector` matches `labels` (Teleport's label matching, without regexes). */
export function labelsMatch(selector: unknown, labels: Record<string, string>): boolean {
  const parsed = LabelSelector.parse(selector ?? {});
  const entries = Object.entries(parsed);
  if (entries.length === 0) return false;
  return entries.every(([key, value]) => {
    const wanted = Array.isArray(value) ? value : [value];
    if (key === "*") return wanted.includes("*");
    return Object.hasOwn(labels, key) && (wanted.includes("*") || wanted.includes(labels[key]));
  });
}

/** Throws `ACCESS_DENIED` unless the roles grant the workload identity with these labels. */
export function assertMayUseWorkloadIdentity(
  roles: Role[],
  identity: { name: string; labels: Record<string, string> },
  botName: string,
): void {
  const what = `bot "${botName}" may not use workload_identity "${identity.name}"`;
  if (roles.some((r) => labelsMatch(r.spec.deny?.workload_identity_labels, identity.labels))) {
    throw new AccessDeniedError(`${what}: a role's deny.workload_identity_labels matches it`);
  }
  if (!roles.some((r) => labelsMatch(r.spec.allow?.workload_identity_labels, identity.labels))) {
    throw new AccessDeniedError(
      `${what}: no role's allow.workload_identity_labels matches its labels`,
    );
  }
}
