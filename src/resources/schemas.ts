/**
 * Resource schemas in Teleport's YAML shapes. These zod schemas are the single
 * source of truth: TypeScript types are inferred from them, the server
 * validates stored and submitted resources with them, and tctl reports their
 * errors with the field path.
 *
 * @module
 */
import * as z from "zod";
import { parseDuration } from "../util/duration.ts";
import { MAX_NEW_BOT_NAME, X509_NAME_UPPER_BOUND } from "../protocol/subject.ts";
import { spiffeTemplateProblem } from "./spiffe_id_template.ts";

/** RFC 3339 timestamp with an offset or `Z`. */
export const Timestamp = z.iso.datetime({ offset: true });

/** A Go duration string such as `12h` or `1h30m`. */
export const Duration = z.string().refine((s) => {
  try {
    parseDuration(s);
    return true;
  } catch {
    return false;
  }
}, { message: "invalid duration (examples: 90s, 20m, 12h)" });

/** Resource names: what Teleport accepts, minus path separators. */
export const ResourceName = z.string().min(1).max(253).regex(
  /^[A-Za-z0-9@_.:-][A-Za-z0-9@_.:+-]*$/,
  "must contain only letters, digits and @ _ . : + -",
);

/**
 * The name of a bot being created: short enough that its certificates' common
 * name, `bot-<name>`, stays within X.509's bound. Only new names are held to
 * it (./validate.ts, `certificateNameIssue`): a bot stored earlier with a
 * longer name stays readable and keeps joining (docs/operations.md, "Bot and
 * role names").
 */
export const NewBotName = ResourceName.max(
  MAX_NEW_BOT_NAME,
  `a new bot's name is at most ${MAX_NEW_BOT_NAME} characters (its certificates' common name ` +
    `is "bot-" and the name, and X.509 bounds a common name at ${X509_NAME_UPPER_BOUND})`,
);

/**
 * A role name a bot's certificates can carry: each role is an organization
 * attribute of their subject, which X.509 bounds. Held to it: a new role's
 * name, and a role a write adds to a bot.
 */
export const CertificateRoleName = z.string().max(
  X509_NAME_UPPER_BOUND,
  `a role a bot carries is at most ${X509_NAME_UPPER_BOUND} characters (its certificates ` +
    `carry each role as an organization name, which X.509 bounds at ${X509_NAME_UPPER_BOUND})`,
);

/**
 * The most principals OpenSSH reads in one certificate (its
 * SSHKEY_CERT_MAX_PRINCIPALS: OpenSSH 9.2 refuses a 257th as "invalid
 * format", so sshd and ssh cannot use the certificate at all). A bot's
 * principals are the logins of its roles and of its `logins` trait
 * (src/server/join/certs.ts, `botLogins`); entries with `{{` are templates,
 * never principals.
 */
export const SSH_CERT_MAX_PRINCIPALS = 256;

/**
 * The logins one role or one bot's `logins` trait may grant: no more distinct
 * ones than one SSH certificate can carry. Held to it where a write changes
 * them (./validate.ts, `certificateNameIssue`).
 */
export const CertificateLogins = z.array(z.string()).refine(
  (logins) => new Set(logins.filter((l) => !l.includes("{{"))).size <= SSH_CERT_MAX_PRINCIPALS,
  `at most ${SSH_CERT_MAX_PRINCIPALS} distinct logins (each is a principal of the bot's SSH ` +
    `certificates, and OpenSSH reads a certificate with at most ${SSH_CERT_MAX_PRINCIPALS})`,
);

/** `metadata` common to every resource. */
export const Metadata = z.strictObject({
  name: ResourceName,
  description: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  expires: Timestamp.optional(),
  revision: z.string().optional(),
});

/** `kind: bot`, `version: v1`. */
export const Bot = z.strictObject({
  kind: z.literal("bot"),
  version: z.literal("v1"),
  sub_kind: z.string().optional(),
  metadata: Metadata,
  spec: z.strictObject({
    roles: z.array(z.string().min(1)).default([]),
    traits: z.array(z.strictObject({ name: z.string().min(1), values: z.array(z.string()) }))
      .default([]),
    max_session_ttl: Duration.optional(),
  }).default(() => ({ roles: [], traits: [] })),
  status: z.strictObject({
    user_name: z.string().optional(),
    role_name: z.string().optional(),
  }).optional(),
});
/** A bot. */
export type Bot = z.infer<typeof Bot>;

/** Recovery modes; `""` means `standard`. */
export const RecoveryMode = z.enum(["", "standard", "relaxed", "insecure"]);
/** A recovery mode. */
export type RecoveryMode = z.infer<typeof RecoveryMode>;

/** `spec.bound_keypair` of a token (user-writable). */
export const BoundKeypairSpec = z.strictObject({
  onboarding: z.strictObject({
    initial_public_key: z.string().optional(),
    registration_secret: z.string().optional(),
    must_register_before: Timestamp.optional(),
  }).default({}),
  recovery: z.strictObject({
    limit: z.number().int().min(0).max(0xffff_ffff).default(1),
    mode: RecoveryMode.default(""),
  }).default({ limit: 1, mode: "" }),
  rotate_after: Timestamp.optional(),
});
/** `spec.bound_keypair`. */
export type BoundKeypairSpec = z.infer<typeof BoundKeypairSpec>;

/** `status.bound_keypair` of a token (server-owned, admin-editable). */
export const BoundKeypairStatus = z.strictObject({
  registration_secret: z.string().optional(),
  bound_public_key: z.string().optional(),
  bound_bot_instance_id: z.string().optional(),
  recovery_count: z.number().int().min(0).max(0xffff_ffff).default(0),
  last_recovered_at: Timestamp.optional(),
  last_rotated_at: Timestamp.optional(),
});
/** `status.bound_keypair`. */
export type BoundKeypairStatus = z.infer<typeof BoundKeypairStatus>;

/** Join methods Keybound implements. */
export const JoinMethod = z.enum(["bound_keypair"], {
  message: "unsupported join method (Keybound supports: bound_keypair)",
});

/** `kind: token`, `version: v2`. */
export const Token = z.strictObject({
  kind: z.literal("token"),
  version: z.literal("v2"),
  sub_kind: z.string().optional(),
  metadata: Metadata,
  spec: z.strictObject({
    roles: z.array(z.string()).refine((r) => r.length === 1 && r[0] === "Bot", {
      message: "bound_keypair tokens must have roles: [Bot]",
    }),
    bot_name: ResourceName,
    join_method: JoinMethod,
    bound_keypair: BoundKeypairSpec,
  }),
  status: z.strictObject({ bound_keypair: BoundKeypairStatus.optional() }).optional(),
});
/** A join token. */
export type Token = z.infer<typeof Token>;

/** `kind: role`, `version: v7`: only `allow.logins` / `deny.logins` mean something here. */
export const Role = z.strictObject({
  kind: z.literal("role"),
  version: z.literal("v7"),
  metadata: Metadata,
  spec: z.looseObject({
    allow: z.looseObject({ logins: z.array(z.string().min(1)).optional() }).optional(),
    deny: z.looseObject({ logins: z.array(z.string().min(1)).optional() }).optional(),
  }).default({}),
});
/** A role. */
export type Role = z.infer<typeof Role>;

/** A lock's target; at least one field is set. */
export const LockTarget = z.strictObject({
  join_token: z.string().min(1).optional(),
  bot_instance_id: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
}).refine((t) => Object.values(t).some((v) => v !== undefined), {
  message: "a lock needs at least one target: join_token, bot_instance_id or user",
});

/** `kind: lock`, `version: v2`. */
export const Lock = z.strictObject({
  kind: z.literal("lock"),
  version: z.literal("v2"),
  metadata: Metadata,
  spec: z.strictObject({
    target: LockTarget,
    message: z.string().optional(),
    expires: Timestamp.optional(),
    created_at: Timestamp.optional(),
    created_by: z.string().optional(),
  }),
});
/** A lock. */
export type Lock = z.infer<typeof Lock>;

/** One authentication of a bot instance. */
export const BotInstanceAuthentication = z.strictObject({
  authenticated_at: Timestamp,
  join_method: z.string(),
  join_token: z.string().optional(),
  generation: z.number().int(),
  public_key: z.string(),
  metadata: z.record(z.string(), z.string()).optional(),
});

/** One self-reported heartbeat of a bot instance (not trusted). */
export const BotInstanceHeartbeat = z.strictObject({
  recorded_at: Timestamp,
  is_startup: z.boolean(),
  version: z.string().max(64),
  hostname: z.string().max(256),
  uptime: z.string().max(32),
  join_method: z.string().max(64),
  one_shot: z.boolean(),
  architecture: z.string().max(64),
  os: z.string().max(64),
});

/** `kind: bot_instance`, `version: v1`. The name is `<bot>/<instance id>`. */
export const BotInstance = z.strictObject({
  kind: z.literal("bot_instance"),
  version: z.literal("v1"),
  metadata: z.strictObject({
    name: z.string(),
    expires: Timestamp.optional(),
    revision: z.string().optional(),
  }),
  spec: z.strictObject({
    bot_name: z.string(),
    instance_id: z.string(),
    previous_instance_id: z.string().optional(),
  }),
  status: z.strictObject({
    initial_authentication: BotInstanceAuthentication.optional(),
    latest_authentications: z.array(BotInstanceAuthentication).default([]),
    initial_heartbeat: BotInstanceHeartbeat.optional(),
    latest_heartbeats: z.array(BotInstanceHeartbeat).default([]),
  }),
});
/** A bot instance. */
export type BotInstance = z.infer<typeof BotInstance>;

/**
 * `kind: workload_identity`, `version: v1`: what a bot's SVIDs say. Outputs
 * select one by name; a bot may use it if one of its roles' `allow.
 * workload_identity_labels` matches its labels (Teleport's rule).
 */
export const WorkloadIdentity = z.strictObject({
  kind: z.literal("workload_identity"),
  version: z.literal("v1"),
  metadata: Metadata,
  spec: z.strictObject({
    spiffe: z.strictObject({
      /** SPIFFE ID path template, e.g. `/bot/{{ user.bot_name }}`. */
      id: z.string({ error: "required: the SPIFFE ID path, e.g. /bot/{{ user.bot_name }}" })
        .superRefine((id, ctx) => {
          const problem = spiffeTemplateProblem(id);
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        }),
      /** Free text handed to workloads alongside the SVID. */
      hint: z.string().optional(),
    }),
  }),
});
/** A workload identity. */
export type WorkloadIdentity = z.infer<typeof WorkloadIdentity>;

/** Every kind tctl can create, keyed by `kind`. */
export const CREATABLE_KINDS = {
  bot: Bot,
  token: Token,
  role: Role,
  lock: Lock,
  workload_identity: WorkloadIdentity,
} as const;
/** A kind tctl can create. */
export type CreatableKind = keyof typeof CREATABLE_KINDS;
/** Every kind the API serves. */
export const ALL_KINDS = [
  "bot",
  "token",
  "role",
  "lock",
  "bot_instance",
  "workload_identity",
] as const;
/** A kind the API serves. */
export type Kind = typeof ALL_KINDS[number];

/** The schema of every kind the API serves, keyed by `kind`: the one kind→schema map. */
export const RESOURCE_SCHEMAS = { ...CREATABLE_KINDS, bot_instance: BotInstance } as const;
/** The resource type of `kind`. */
export type ResourceOf<K extends Kind> = z.infer<(typeof RESOURCE_SCHEMAS)[K]>;

/** The schema of `kind`, typed by its kind (TypeScript cannot narrow the map's union itself). */
export function schemaOf<K extends Kind>(kind: K): z.ZodType<ResourceOf<K>> {
  return RESOURCE_SCHEMAS[kind] as unknown as z.ZodType<ResourceOf<K>>;
}
/** Any resource the API serves. */
export type AnyResource = ResourceOf<Kind>;
/** Resources tctl may create or overwrite. */
export type CreatableResource = ResourceOf<CreatableKind>;
