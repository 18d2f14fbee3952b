/**
 * Writes of the resource store: create or upsert resources together in one
 * compare-and-swap, delete one, and request a token's key rotation. Every
 * write is one atomic compare-and-swap on the entries' versions that also
 * stores the audit event, retried a few times before `CONFLICT`.
 *
 * @module
 */
import { BadParameterError, KeyboundError, NotFoundError } from "../../errors.ts";
import type { JsonValue } from "../../storage/backend.ts";
import type { Kind, Token } from "../../resources/schemas.ts";
import type { CreatableResource } from "../../resources/validate.ts";
import type { SecretGenerator } from "../../resources/token_rules.ts";
import { auditMutations } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import { resourceKey } from "../keys.ts";
import { locksChangedMutation } from "../locks.ts";
import { liveEntry, nameParts, type StoredResource } from "./read.ts";
import { type Actor, planWrite, type WriteMode, type WritePlan } from "./write_plan.ts";

/** Result of {@linkcode putResource}. */
export interface PutResult {
  /** What was stored. */
  stored: StoredResource;
  /** True if no live resource existed before. */
  created: boolean;
}

/** Attempts of a compare-and-swap write before giving up with `CONFLICT`. */
const MAX_WRITE_ATTEMPTS = 5;

function conflict(kind: Kind, name: string): KeyboundError {
  return new KeyboundError(
    "CONFLICT",
    `${kind} "${name}" was changed concurrently; retry`,
  );
}

/**
 * Creates or overwrites resources together: every one is validated and
 * prepared first, then all are written in one compare-and-swap, or none is
 * (a command such as `tctl bots add` never leaves a bot without its token).
 * Per resource the rules of {@linkcode putResource} apply.
 */
export async function putResources(
  ctx: ServerContext,
  incoming: CreatableResource[],
  mode: WriteMode,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<PutResult[]> {
  const seen = new Set<string>();
  incoming.forEach((r, i) => {
    const id = `${r.kind}/${r.metadata.name}`;
    if (seen.has(id)) {
      throw new BadParameterError(`resources[${i}]: ${id} appears twice`, {
        details: { path: `resources[${i}]` },
      });
    }
    seen.add(id);
  });
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
    const plans: WritePlan[] = [];
    for (const [i, r] of incoming.entries()) {
      try {
        plans.push(await planWrite(ctx, r, mode, actor, generateSecret));
      } catch (err) {
        // Which item was refused, for a client that sent a file's worth (tctl
        // create -f names the document and item from it); same code and words.
        if (!(err instanceof KeyboundError) || incoming.length === 1) throw err;
        const inner = err.details?.path;
        const path = `resources[${i}]${typeof inner === "string" ? `.${inner}` : ""}`;
        throw new KeyboundError(err.code, err.message, {
          cause: err,
          details: { ...err.details, path },
        });
      }
    }
    const r = await ctx.backend.commit({
      checks: plans.map((p) => p.check),
      mutations: plans.flatMap((p) => p.mutations),
    });
    if (!r.ok) continue;
    const results: PutResult[] = [];
    for (const p of plans) {
      const stored = liveEntry(ctx, p.kind, await ctx.backend.get<unknown>(p.key));
      if (!stored) throw conflict(p.kind, p.name);
      results.push({ stored, created: p.created });
    }
    return results;
  }
  const first = incoming[0];
  throw conflict(first.kind, first.metadata.name);
}

/**
 * Creates or overwrites a resource. With `mode: "create"` an existing live
 * resource is `ALREADY_EXISTS`. With `upsert`, a `metadata.revision` that no
 * longer matches the stored version is `CONFLICT` (the file was read before
 * someone else changed or deleted the resource); omit the revision to
 * overwrite (or re-create) anyway.
 * Tokens keep their stored status unless one is sent, and get a registration
 * secret per Teleport's rules; bots get their status; locks their creator.
 */
export async function putResource(
  ctx: ServerContext,
  incoming: CreatableResource,
  mode: WriteMode,
  actor: Actor,
  generateSecret?: SecretGenerator,
): Promise<PutResult> {
  return (await putResources(ctx, [incoming], mode, actor, generateSecret))[0];
}

/** Deletes a resource (bot instances included); `NOT_FOUND` if it does not exist. */
export async function deleteResource(
  ctx: ServerContext,
  kind: Kind,
  name: string,
  actor: Actor,
): Promise<void> {
  const key = resourceKey(kind, ...nameParts(kind, name));
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
    const entry = await ctx.backend.get<unknown>(key);
    if (!liveEntry(ctx, kind, entry) || !entry) {
      throw new NotFoundError(`${kind} "${name}" not found`);
    }
    const r = await ctx.backend.commit({
      checks: [{ key, version: entry.version }],
      mutations: [
        { type: "delete", key },
        ...auditMutations(ctx, {
          type: "resource.deleted",
          status: { success: true },
          ...(actor.remoteAddr ? { connection: { remote_addr: actor.remoteAddr } } : {}),
          kind,
          name,
          user: actor.user,
        }),
        ...(kind === "lock" ? [locksChangedMutation(ctx)] : []),
      ],
    });
    if (r.ok) return;
  }
  throw conflict(kind, name);
}

/**
 * Requests a bound-keypair rotation at the token's next join
 * (`tctl bound-keypair rotate`): sets `spec.bound_keypair.rotate_after` to now.
 */
export async function requestTokenRotation(
  ctx: ServerContext,
  name: string,
): Promise<StoredResource<Token>> {
  const key = resourceKey("token", ...nameParts("token", name));
  for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
    const entry = await ctx.backend.get<unknown>(key);
    const existing = liveEntry(ctx, "token", entry);
    if (!existing || !entry) throw new NotFoundError(`token "${name}" not found`);
    const token = existing.resource;
    const updated: Token = {
      ...token,
      spec: {
        ...token.spec,
        bound_keypair: { ...token.spec.bound_keypair, rotate_after: ctx.now().toISOString() },
      },
    };
    const r = await ctx.backend.commit({
      checks: [{ key, version: entry.version }],
      mutations: [{
        type: "set",
        key,
        value: updated as unknown as JsonValue,
        ...(token.metadata.expires ? { expiresAt: Date.parse(token.metadata.expires) } : {}),
      }],
    });
    if (!r.ok) continue;
    const stored = liveEntry(ctx, "token", await ctx.backend.get<unknown>(key));
    if (!stored) throw conflict("token", name);
    return stored;
  }
  throw conflict("token", name);
}
