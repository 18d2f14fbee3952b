/**
 * The checked write of one resource: what a create or upsert refuses (an
 * existing resource, a stale `metadata.revision`, a past expiry, names too
 * long for a certificate), the server-owned fields it gets (token secrets and
 * status, bot status, lock creator) and the mutations it commits with its
 * audit event.
 *
 * @module
 */
import { botUserName } from "../../protocol/subject.ts";
import { AlreadyExistsError, BadParameterError, KeyboundError } from "../../errors.ts";
import type { Check, JsonValue, Key, Mutation } from "../../storage/backend.ts";
import type { Kind } from "../../resources/schemas.ts";
import {
  type AnyResource,
  certificateNameIssue,
  type CreatableResource,
  formatIssue,
} from "../../resources/validate.ts";
import { formatPath } from "../../util/zod_error.ts";
import { prepareTokenForWrite, type SecretGenerator } from "../../resources/token_rules.ts";
import { type AuditInput, auditMutations } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import { resourceKey } from "../keys.ts";
import { assertLockAllowed, locksChangedMutation } from "../locks.ts";
import { isExpired, liveEntry, nameParts, type StoredResource } from "./read.ts";

/** Who performs a write, for audit events and lock metadata. */
export interface Actor {
  /** User name from the caller's certificate. */
  user: string;
  /** Peer address, when known. */
  remoteAddr?: string;
}

/** `create` refuses an existing resource; `upsert` overwrites it. */
export type WriteMode = "create" | "upsert";

function withoutRevision<T extends AnyResource>(resource: T): T {
  const { revision: _revision, ...metadata } = resource.metadata;
  return { ...resource, metadata } as T;
}

/** Server-owned fields and rules applied before a resource is stored. */
async function prepare(
  ctx: ServerContext,
  incoming: CreatableResource,
  existing: StoredResource | null,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<CreatableResource> {
  const resource = withoutRevision(incoming);
  switch (resource.kind) {
    case "token":
      return await prepareTokenForWrite(
        resource,
        existing?.resource.kind === "token" ? existing.resource : null,
        generateSecret,
      );
    case "bot": {
      const user = botUserName(resource.metadata.name);
      return { ...resource, status: { user_name: user, role_name: user } };
    }
    case "lock":
      assertLockAllowed(resource);
      return {
        ...resource,
        spec: {
          ...resource.spec,
          created_at: resource.spec.created_at ?? ctx.now().toISOString(),
          created_by: resource.spec.created_by ?? actor.user,
        },
      };
    case "role":
    case "workload_identity":
      return resource;
  }
}

function auditFor(resource: CreatableResource, actor: Actor, created: boolean): AuditInput {
  const connection = actor.remoteAddr ? { connection: { remote_addr: actor.remoteAddr } } : {};
  if (resource.kind === "lock") {
    return {
      type: "lock.created",
      status: { success: true },
      ...connection,
      lock_name: resource.metadata.name,
      target: resource.spec.target as JsonValue,
      message: resource.spec.message ?? "",
      created_by: resource.spec.created_by ?? actor.user,
    };
  }
  return {
    type: "resource.created",
    status: { success: true },
    ...connection,
    kind: resource.kind,
    name: resource.metadata.name,
    user: actor.user,
    overwritten: !created,
  };
}

/** One resource's part of a write: its precondition and mutations. */
export interface WritePlan {
  /** The resource's kind. */
  kind: Kind;
  /** The resource's name. */
  name: string;
  /** Its backend key. */
  key: Key;
  /** True if no live resource existed before. */
  created: boolean;
  /** The entry's version as read (null if absent), which the commit checks. */
  check: Check;
  /** The set of the prepared resource, its audit event and (locks) the locks-changed marker. */
  mutations: Mutation[];
}

/** Reads the current entry and builds the checked write of `incoming` (throws on refusal). */
export async function planWrite(
  ctx: ServerContext,
  incoming: CreatableResource,
  mode: WriteMode,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<WritePlan> {
  const kind = incoming.kind;
  const name = incoming.metadata.name;
  const key = resourceKey(kind, ...nameParts(kind, name));
  if (isExpired(incoming, ctx.now())) {
    throw new BadParameterError(`metadata.expires: ${incoming.metadata.expires} is in the past`, {
      details: { path: "metadata.expires" },
    });
  }
  const entry = await ctx.backend.get<unknown>(key);
  const existing = liveEntry(ctx, kind, entry);
  if (existing && mode === "create") {
    throw new AlreadyExistsError(`${kind} "${name}" already exists`);
  }
  const revision = incoming.metadata.revision;
  // A revision asks for a conditional write: a resource deleted since it was
  // read must not come back because an old copy was saved.
  if (revision !== undefined && !existing) {
    throw new KeyboundError(
      "CONFLICT",
      `${kind} "${name}" was deleted since revision ${revision} was read; ` +
        "remove metadata.revision to create it again",
    );
  }
  if (existing && revision !== undefined && revision !== existing.version) {
    throw new KeyboundError(
      "CONFLICT",
      `${kind} "${name}" changed since revision ${revision} was read; ` +
        "fetch it again, or remove metadata.revision to overwrite it",
    );
  }
  const tooLong = certificateNameIssue(
    incoming,
    (existing?.resource ?? null) as CreatableResource | null,
  );
  if (tooLong) {
    throw new BadParameterError(formatIssue(tooLong), {
      details: { path: formatPath(tooLong.path) },
    });
  }
  const resource = await prepare(ctx, incoming, existing, actor, generateSecret);
  const expires = resource.metadata.expires;
  return {
    kind,
    name,
    key,
    created: existing === null,
    check: { key, version: entry?.version ?? null },
    mutations: [
      {
        type: "set",
        key,
        value: resource as unknown as JsonValue,
        ...(expires ? { expiresAt: Date.parse(expires) } : {}),
      },
      ...auditMutations(ctx, auditFor(resource, actor, existing === null)),
      ...(kind === "lock" ? [locksChangedMutation(ctx)] : []),
    ],
  };
}
