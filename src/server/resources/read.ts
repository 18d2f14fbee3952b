/**
 * Point reads of the resource store: a resource's backend key parts, the live
 * (validated, unexpired) resource of a stored entry, one resource by kind and
 * name, and the rendering with `metadata.revision` that the API returns.
 *
 * @module
 */
import { BadParameterError } from "../../errors.ts";
import type { Entry } from "../../storage/backend.ts";
import { type Kind, ResourceName, type ResourceOf } from "../../resources/schemas.ts";
import type { AnyResource } from "../../resources/validate.ts";
import type { ServerContext } from "../context.ts";
import { resourceKey } from "../keys.ts";
import { validatedValue } from "./validated.ts";

/** A resource as stored, with its backend version. */
export interface StoredResource<T extends AnyResource = AnyResource> {
  /** The resource (without `metadata.revision`). */
  resource: T;
  /** Backend version of the entry. */
  version: string;
}

/**
 * Backend key parts of a resource name. Bot instances are addressed as
 * `<bot>/<instance id>`; other names cannot contain `/`.
 */
export function nameParts(kind: Kind, name: string): string[] {
  if (kind === "bot_instance") {
    const parts = name.split("/");
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new BadParameterError(
        `bot_instance names have the form <bot>/<instance id>, got "${name}"`,
        { details: { path: "metadata.name" } },
      );
    }
    return parts;
  }
  if (!ResourceName.safeParse(name).success) {
    throw new BadParameterError(`invalid ${kind} name "${name}"`, {
      details: { path: "metadata.name" },
    });
  }
  return [name];
}

/** True if `resource` has a `metadata.expires` at or before `now`. */
export function isExpired(resource: AnyResource, now: Date): boolean {
  const expires = resource.metadata.expires;
  return expires !== undefined && Date.parse(expires) <= now.getTime();
}

/**
 * A stored entry validated against its kind's schema; null if malformed
 * (logged) or expired. Point reads `remember` the validation for the next read.
 */
export function liveEntry<K extends Kind>(
  ctx: ServerContext,
  kind: K,
  entry: Entry<unknown> | null,
  remember = true,
): StoredResource<ResourceOf<K>> | null {
  if (!entry) return null;
  const resource = validatedValue(ctx, kind, entry, remember);
  if (!resource) {
    ctx.log.warn("ignoring malformed stored resource", { kind, key: entry.key.join("/") });
    return null;
  }
  if (isExpired(resource, ctx.now())) return null;
  return { resource, version: entry.version };
}

/** The resource with `metadata.revision` set to its version, as the API returns it. */
export function withRevision<T extends AnyResource>(stored: StoredResource<T>): T {
  return {
    ...stored.resource,
    metadata: { ...stored.resource.metadata, revision: stored.version },
  };
}

/** Reads one resource, validated against its kind's schema; null if absent or expired. */
export async function getResource<K extends Kind>(
  ctx: ServerContext,
  kind: K,
  name: string,
): Promise<StoredResource<ResourceOf<K>> | null> {
  const entry = await ctx.backend.get<unknown>(resourceKey(kind, ...nameParts(kind, name)));
  return liveEntry(ctx, kind, entry);
}
