/**
 * Break-glass for the admin identity, run on the auth host with direct
 * access to the cluster's storage (`deno task auth admin-identity`): it
 * issues a fresh admin identity and lifts every lock that matches the admin
 * (none can be created through the API, but a backend restored from an older
 * version, or written by hand, may hold one), recording both in the audit
 * log in the same commit as the lifts.
 *
 * @module
 */
import { ConfigError, KeyboundError } from "../errors.ts";
import { ADMIN_USERNAME } from "../protocol/subject.ts";
import { Lock } from "../resources/schemas.ts";
import { type Backend, type Check, listInPages, type Mutation } from "../storage/backend.ts";
import { auditMutations } from "./audit.ts";
import { bootstrapCluster, type BootstrapOptions } from "./bootstrap.ts";
import type { ServerContext } from "./context.ts";
import { ADMIN_IDENTITY_TTL_MS, issueAdminIdentityFile } from "./identity.ts";
import { CLUSTER_META, resourcePrefix } from "./keys.ts";
import { lockMatches, locksChangedMutation } from "./locks.ts";

/** Who ran the break-glass, for the audit log. */
export const BREAK_GLASS_ACTOR = "break-glass";

const ATTEMPTS = 10;

/**
 * Loads the cluster already in `backend`; unlike `bootstrapCluster` it never
 * creates one, so a wrong `--data-dir` or `--storage` is an error, not a new
 * cluster.
 */
export async function loadExistingCluster(
  backend: Backend,
  options: Omit<BootstrapOptions, "clusterName">,
): Promise<ServerContext> {
  const meta = await backend.get<{ cluster_name?: unknown }>(CLUSTER_META);
  const name = meta?.value?.cluster_name;
  if (typeof name !== "string") {
    throw new ConfigError("no Keybound cluster in this storage (check --data-dir and --storage)");
  }
  return await bootstrapCluster(backend, { ...options, clusterName: name });
}

/** What {@linkcode recoverAdmin} did. */
export interface AdminRecovery {
  /** The new admin identity file (docs/protocol.md §2). */
  identityFile: string;
  /** Names of the locks that matched the admin and were deleted. */
  liftedLocks: string[];
}

/**
 * Issues a fresh admin identity and, in one compare-and-swap, deletes every
 * lock matching the admin and stores the audit events (`resource.deleted`
 * per lock, and `cert.create` with `break_glass: true`).
 */
export async function recoverAdmin(ctx: ServerContext): Promise<AdminRecovery> {
  const identityFile = await issueAdminIdentityFile(ctx);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const checks: Check[] = [];
    const mutations: Mutation[] = [];
    const lifted: string[] = [];
    for await (const entry of listInPages(ctx.backend, resourcePrefix("lock"))) {
      const lock = Lock.safeParse(entry.value);
      if (!lock.success || !lockMatches(lock.data, { user: ADMIN_USERNAME })) continue;
      lifted.push(lock.data.metadata.name);
      checks.push({ key: entry.key, version: entry.version });
      mutations.push(
        { type: "delete", key: entry.key },
        ...auditMutations(ctx, {
          type: "resource.deleted",
          status: { success: true },
          kind: "lock",
          name: lock.data.metadata.name,
          user: BREAK_GLASS_ACTOR,
        }),
      );
    }
    if (lifted.length > 0) mutations.push(locksChangedMutation(ctx));
    mutations.push(...auditMutations(ctx, {
      type: "cert.create",
      status: { success: true },
      cert_type: "admin_identity",
      identity: ADMIN_USERNAME,
      expires: new Date(ctx.now().getTime() + ADMIN_IDENTITY_TTL_MS).toISOString(),
      break_glass: true,
      lifted_locks: lifted,
    }));
    if ((await ctx.backend.commit({ checks, mutations })).ok) {
      return { identityFile, liftedLocks: lifted };
    }
  }
  throw new KeyboundError(
    "CONFLICT",
    "locks kept changing during the admin recovery; run it again",
  );
}
