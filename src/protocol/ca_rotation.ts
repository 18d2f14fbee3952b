/**
 * Wire messages of certificate authority rotation (docs/protocol.md §10):
 * the admin calls `POST /v1/cas/{type}/rotate` and `GET /v1/cas/{type}`, and
 * the per-CA status `GET /v1/status` carries in `cas`.
 *
 * @module
 */
import * as z from "zod";

/** Every CA type, in the order tctl lists them. */
export const CA_TYPES = ["host", "user", "bound_keypair", "jwt", "spiffe"] as const;
/** A CA type. */
export const CaTypeSchema = z.enum(CA_TYPES);
/** A CA type. */
export type CaTypeName = z.infer<typeof CaTypeSchema>;

/** Rotation phases, with Teleport's meaning (§10). */
export const ROTATION_PHASES = [
  "standby",
  "init",
  "update_clients",
  "update_servers",
  "rollback",
] as const;
/** A rotation phase. */
export type RotationPhase = "standby" | "init" | "update_clients" | "update_servers" | "rollback";
/** Validates a {@linkcode RotationPhase}. */
export const RotationPhaseSchema = z.enum(ROTATION_PHASES);

/** Rotation modes. */
export const ROTATION_MODES = ["auto", "manual"] as const;
/** Automatic (phases follow the schedule) or manual (one phase per command). */
export type RotationMode = "auto" | "manual";
/** Validates a {@linkcode RotationMode}. */
export const RotationModeSchema = z.enum(ROTATION_MODES);

/** Path of a CA's admin view (every trusted key, all formats). */
export function caAdminPath(type: CaTypeName): string {
  return `/v1/cas/${type}`;
}

/** Path of the rotate call of a CA. */
export function caRotatePath(type: CaTypeName): string {
  return `/v1/cas/${type}/rotate`;
}

/**
 * `POST /v1/cas/{type}/rotate`: `mode: "auto"` starts a rotation whose
 * phases follow from `grace_period_s`; `mode: "manual"` moves to `phase`
 * (default `init`).
 */
export const RotateRequest = z.strictObject({
  mode: RotationModeSchema,
  phase: RotationPhaseSchema.optional(),
  grace_period_s: z.number().int().positive().optional(),
});
/** A rotate request. */
export type RotateRequest = z.infer<typeof RotateRequest>;

/**
 * One key of a CA as `tctl status` shows it. This and the other answer-only
 * schemas below are `z.object`, not strict: a client drops the fields a newer
 * server added instead of failing (docs/protocol.md §1.7).
 */
export const CaKeyStatus = z.object({
  /** `signing`: signs now; `trusted`: verifies only. */
  role: z.enum(["signing", "trusted"]),
  /** `sha256:<hex>` of the X.509 CA key's SPKI (the pin). */
  tls_pin: z.string().optional(),
  /**
   * User CA: `sha256:<hex>` pin of the key set's Ed25519 X.509 key, which
   * signs the join certificates of Ed25519 bots (absent for a set made before
   * that key existed).
   */
  tls_ed25519_pin: z.string().optional(),
  /** OpenSSH `SHA256:` fingerprint of the SSH CA key. */
  ssh_fingerprint: z.string().optional(),
  /** JWT key id. */
  kid: z.string().optional(),
  /** Host CA: this key signs the auth service's TLS certificate. */
  serves_tls: z.boolean().optional(),
});
/** A key's status. */
export type CaKeyStatus = z.infer<typeof CaKeyStatus>;

/** The rotation status of one CA (an answer only). */
export const CaStatus = z.object({
  type: CaTypeSchema,
  phase: RotationPhaseSchema,
  mode: RotationModeSchema.optional(),
  rotation_id: z.string().optional(),
  started: z.string().optional(),
  grace_period_s: z.number().optional(),
  phase_changed_at: z.string().optional(),
  schedule: z.object({
    update_clients: z.string(),
    update_servers: z.string(),
    standby: z.string(),
  }).optional(),
  last_rotated: z.string().optional(),
  /** Every trusted key, the signing key first. */
  keys: z.array(CaKeyStatus),
  /** Keys earlier rotations dropped (remembered to answer `CA_KEY_DROPPED`). */
  dropped_keys: z.number().int(),
});
/** A CA's status. */
export type CaStatus = z.infer<typeof CaStatus>;

/** A public JWK as the server publishes it (an answer only). */
export const PublicJwkSchema = z.object({
  kty: z.string(),
  crv: z.string(),
  x: z.string(),
  y: z.string().optional(),
  kid: z.string().optional(),
  alg: z.string().optional(),
  use: z.string(),
  x5c: z.array(z.string()).optional(),
});

/**
 * `GET /v1/cas/{type}`: every trusted key of a CA in each format it has,
 * signing key first (an answer only).
 */
export const CaExport = z.object({
  type: CaTypeSchema,
  tls_ca_certs: z.array(z.string()),
  /**
   * User CA: the trusted Ed25519 X.509 CA certificates (the signing set's
   * first when it has one: in the first user CA rotation of a cluster created
   * before the key, at `init` and after a `rollback`, the only one is the other
   * set's), which verify the join certificates of Ed25519 bots; absent when
   * there are none. Never part of `tls_ca_certs`, which third-party TLS
   * stacks read.
   */
  tls_ed25519_ca_certs: z.array(z.string()).optional(),
  ssh_ca_keys: z.array(z.string()),
  /** JWT keys as a JWK Set (bound_keypair, jwt). */
  jwks: z.object({ keys: z.array(PublicJwkSchema) }),
});
/** A CA export. */
export type CaExport = z.infer<typeof CaExport>;
