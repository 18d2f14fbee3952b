/**
 * The stored shape of a certificate authority with its rotation state, as
 * zod schemas (the single source of truth; types are inferred). Records
 * written before rotation existed (`{type, tls, ssh, jwt: [...]}`) are
 * migrated on read, so an existing cluster loads unchanged.
 *
 * @module
 */
import * as z from "zod";
import {
  CA_TYPES,
  CaTypeSchema,
  type RotationMode,
  RotationModeSchema,
  type RotationPhase,
  RotationPhaseSchema,
} from "../../protocol/ca_rotation.ts";

export { CA_TYPES, CaTypeSchema };
export type { RotationMode, RotationPhase };

const Time = z.iso.datetime();

/** The rotation state of one CA (times are ISO 8601). */
export interface Rotation {
  /** Current phase. */
  phase: RotationPhase;
  /** Mode of the rotation in progress. */
  mode?: RotationMode;
  /** Random id of the rotation in progress (or the last one). */
  id?: string;
  /** When the rotation in progress started. */
  started?: string;
  /** Grace period of the rotation, seconds. */
  grace_period_s?: number;
  /** When the phase was entered. */
  phase_changed_at?: string;
  /** Automatic mode: when each next phase is due. */
  schedule?: { update_clients: string; update_servers: string; standby: string };
  /** When the last rotation completed (reached standby from update_servers). */
  last_rotated?: string;
}

/** Validates a {@linkcode Rotation}. */
export const RotationSchema: z.ZodType<Rotation> = z.strictObject({
  phase: RotationPhaseSchema,
  mode: RotationModeSchema.optional(),
  id: z.string().optional(),
  started: Time.optional(),
  grace_period_s: z.number().int().positive().optional(),
  phase_changed_at: Time.optional(),
  schedule: z.strictObject({ update_clients: Time, update_servers: Time, standby: Time })
    .optional(),
  last_rotated: Time.optional(),
});

const StoredKey = z.string().min(1); // base64 PKCS#8

const StoredTlsKey = z.strictObject({ cert_pem: z.string().min(1), key_pkcs8: StoredKey });

/** One key of each half a CA type uses. Private keys rest as base64 PKCS#8. */
export const StoredKeySet = z.strictObject({
  tls: StoredTlsKey.optional(),
  /**
   * User CA only: the Ed25519 X.509 key that signs the join certificates of
   * Ed25519 bots (docs/security.md). Absent in sets made before it existed:
   * such a set signs every certificate with `tls`.
   */
  tls_ed25519: StoredTlsKey.optional(),
  ssh: z.strictObject({ key_pkcs8: StoredKey }).optional(),
  jwt: z.strictObject({ key_pkcs8: StoredKey }).optional(),
});
/** A stored key set. */
export type StoredKeySet = z.infer<typeof StoredKeySet>;

/** A key a rotation dropped: public halves only. */
export const StoredDroppedKey = z.strictObject({
  tls_cert_pem: z.string().optional(),
  /** The CA certificate of the dropped set's Ed25519 X.509 key (user CA), if it had one. */
  tls_ed25519_cert_pem: z.string().optional(),
  ssh_public_key: z.string().optional(),
  jwt_kid: z.string().optional(),
  /** The dropped JWT key's SPKI, base64 (bound_keypair: see docs/security.md). */
  jwt_spki: z.string().optional(),
  dropped_at: Time,
});

/** Dropped keys remembered per CA (to answer `CA_KEY_DROPPED`); older ones are forgotten. */
export const MAX_DROPPED_KEYS = 8;

/** A cross-signed host CA certificate and until when it is served. */
export const StoredCrossSigned = z.strictObject({
  cert_pem: z.string().min(1),
  until: Time,
  rotation_id: z.string(),
});

/** The current stored record of a CA. */
export const StoredCa = z.strictObject({
  type: CaTypeSchema,
  /** Record format version. */
  format: z.literal(2),
  /** The keys that sign. */
  active: StoredKeySet,
  /** The other trusted keys during a rotation (new in init, old from update_clients). */
  additional: StoredKeySet.optional(),
  rotation: RotationSchema,
  dropped: z.array(StoredDroppedKey).max(MAX_DROPPED_KEYS),
  cross_signed: z.array(StoredCrossSigned),
});
/** The current stored record of a CA. */
export type StoredCa = z.infer<typeof StoredCa>;

/** The record written before rotation existed. */
const LegacyStoredCa = z.object({
  type: CaTypeSchema,
  tls: z.object({ cert_pem: z.string(), key_pkcs8: StoredKey }).optional(),
  ssh: z.object({ key_pkcs8: StoredKey }).optional(),
  jwt: z.array(z.object({ key_pkcs8: StoredKey })).min(1).optional(),
});

/**
 * Parses a stored CA record of either format; a legacy record becomes a
 * format-2 record in standby (legacy records held one JWT key). Returns the
 * zod error on malformed input.
 */
export function parseStoredCa(
  value: unknown,
): { success: true; data: StoredCa } | { success: false; error: z.ZodError } {
  if (typeof value === "object" && value !== null && "format" in value) {
    return StoredCa.safeParse(value);
  }
  const legacy = LegacyStoredCa.safeParse(value);
  if (!legacy.success) return legacy;
  const l = legacy.data;
  const firstJwt = l.jwt?.[0];
  return {
    success: true,
    data: {
      type: l.type,
      format: 2,
      active: {
        ...(l.tls ? { tls: { cert_pem: l.tls.cert_pem, key_pkcs8: l.tls.key_pkcs8 } } : {}),
        ...(l.ssh ? { ssh: { key_pkcs8: l.ssh.key_pkcs8 } } : {}),
        ...(firstJwt ? { jwt: { key_pkcs8: firstJwt.key_pkcs8 } } : {}),
      },
      rotation: { phase: "standby" },
      dropped: [],
      cross_signed: [],
    },
  };
}
