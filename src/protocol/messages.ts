/**
 * Wire messages of the bound-keypair join (docs/protocol.md §4): zod schemas
 * for what clients send and what the server answers. Server and agent both
 * validate with these, so the field names live in exactly one place.
 *
 * @module
 */
import * as z from "zod";
import { answerSchema } from "./answer_schema.ts";

/** Path of the `begin` call. */
export const JOIN_BEGIN_PATH = "/v1/join/bound-keypair/begin";
/** Path of the `continue` call. */
export const JOIN_CONTINUE_PATH = "/v1/join/bound-keypair/continue";

/** Signature algorithm suite the server announces in rotation requests. */
export const SIGNATURE_ALGORITHM_SUITE = "balanced-v1";

// Generous bounds: they only stop a client from making the server hash or
// store megabytes; every real value is far below them.
const MAX_KEY_TEXT = 4096;
const MAX_JOIN_STATE = 8192;
const MAX_SECRET = 1024;
const MAX_SESSION = 16384;
const MAX_SOLUTION = 8192;
const MAX_CERTIFICATE = 8192;

/** `POST /v1/join/bound-keypair/begin` request body. */
export const BeginRequest = z.strictObject({
  token_name: z.string().min(1).max(253),
  join_method: z.string().max(64).optional(),
  system_role: z.string().max(64).optional(),
  public_tls_key: z.string().min(1).max(MAX_KEY_TEXT),
  public_ssh_key: z.string().min(1).max(MAX_KEY_TEXT),
  ttl_seconds: z.number().int().positive().max(10 * 365 * 24 * 3600).optional(),
  initial_join_secret: z.string().max(MAX_SECRET).optional(),
  previous_join_state: z.string().max(MAX_JOIN_STATE).optional(),
  certificate: z.string().min(1).max(MAX_CERTIFICATE).optional(),
});
/** A `begin` request. */
export type BeginRequest = z.infer<typeof BeginRequest>;

/** Reasons a client may give up (Teleport's `GivingUp` reasons). */
export const GivingUpReason = z.enum([
  "UNSUPPORTED_JOIN_METHOD",
  "UNSUPPORTED_MESSAGE_TYPE",
  "CHALLENGE_SOLUTION_FAILED",
]);
/** A giving-up reason. */
export type GivingUpReason = z.infer<typeof GivingUpReason>;

/** The answer to the previous step. */
export const JoinAnswer = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("challenge_solution"),
    solution: z.string().min(1).max(MAX_SOLUTION),
  }),
  z.strictObject({
    type: z.literal("rotation_response"),
    public_key: z.string().min(1).max(MAX_KEY_TEXT),
  }),
  z.strictObject({
    type: z.literal("giving_up"),
    reason: GivingUpReason,
    message: z.string().max(1024).optional(),
  }),
]);
/** An answer. */
export type JoinAnswer = z.infer<typeof JoinAnswer>;

/** `POST /v1/join/bound-keypair/continue` request body. */
export const ContinueRequest = z.strictObject({
  session: z.string().min(1).max(MAX_SESSION),
  answer: JoinAnswer,
});
/** A `continue` request. */
export type ContinueRequest = z.infer<typeof ContinueRequest>;

/** A server step: prove a key, or rotate the bound key. */
export const JoinStep = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("challenge"),
    public_key: z.string(),
    challenge: z.string(),
  }),
  z.strictObject({
    type: z.literal("rotation_request"),
    signature_algorithm_suite: z.string(),
  }),
]);
/** A step. */
export type JoinStep = z.infer<typeof JoinStep>;

/** The credentials of a successful join (docs/protocol.md §4.5). */
export interface JoinResult {
  /** The bot's name. */
  bot_name: string;
  /** The bot instance these credentials belong to. */
  bot_instance_id: string;
  /** Generation counter carried in the new certificate. */
  generation: number;
  /** RFC 3339 end of validity of the certificates. */
  expires: string;
  /** The new certificates and the CAs that issued them. */
  certificates: {
    /** X.509 client certificate, PEM. */
    tls_cert: string;
    /** User CA certificates, PEM. */
    tls_ca_certs: string[];
    /** OpenSSH user certificate, one line. */
    ssh_cert: string;
    /** User CA SSH keys, authorized_keys lines. */
    ssh_ca_keys: string[];
  };
  /**
   * Every key the cluster trusts right now, per CA, the signing key first
   * (docs/protocol.md §4.5, §10). Absent only from results recorded before
   * CA rotation existed (a resume of such a join).
   */
  trust_bundle?: TrustBundle;
  /** Bound-keypair state after this join. */
  bound_keypair: {
    /** Join-state JWT to present on the next join, byte for byte. */
    join_state: string;
    /** The bound public key after this join (authorized_keys). */
    public_key: string;
  };
}

/** The trusted keys of one X.509 + SSH certificate authority, the signing key first. */
export interface CaKeys {
  /** CA certificates, PEM, one per trusted key. */
  tls_ca_certs: string[];
  /** CA SSH public keys, authorized_keys lines. */
  ssh_ca_keys: string[];
}

/** What a bot must trust, authenticated by the channel it already trusts. */
export interface TrustBundle {
  /** Host CA: what verifies the auth service (and SSH hosts). */
  host: CaKeys;
  /** User CA: what verifies bot and user certificates. */
  user: CaKeys;
}

const CaKeysSchema = z.strictObject({
  tls_ca_certs: z.array(z.string().min(1)).min(1),
  ssh_ca_keys: z.array(z.string().min(1)).min(1),
});

/** Validates a {@linkcode TrustBundle}. */
export const TrustBundleSchema: z.ZodType<TrustBundle> = z.strictObject({
  host: CaKeysSchema,
  user: CaKeysSchema,
});

/**
 * Validates a {@linkcode JoinResult}. Annotated with the interface so the
 * type checker keeps the two in step.
 */
export const JoinResultSchema: z.ZodType<JoinResult> = z.strictObject({
  bot_name: z.string(),
  bot_instance_id: z.string(),
  generation: z.number().int(),
  expires: z.string(),
  certificates: z.strictObject({
    tls_cert: z.string(),
    tls_ca_certs: z.array(z.string()),
    ssh_cert: z.string(),
    ssh_ca_keys: z.array(z.string()),
  }),
  trust_bundle: TrustBundleSchema.optional(),
  bound_keypair: z.strictObject({
    join_state: z.string(),
    public_key: z.string(),
  }),
});

// The answers below are what clients parse: built from the strict schemas above (the join
// result is also the stored resume record's), they drop the fields a newer server adds (§1.7).

/** A response carrying the next step. */
export const StepResponse = answerSchema(z.strictObject({ session: z.string(), step: JoinStep }));
/** A step response. */
export type StepResponse = z.infer<typeof StepResponse>;

/** The final response: the result, or `null` after `giving_up`. */
export const ResultResponse = answerSchema(
  z.strictObject({ result: JoinResultSchema.nullable() }),
);
/** A result response. */
export type ResultResponse = z.infer<typeof ResultResponse>;

/**
 * Any successful response of `begin` or `continue`: exactly one of `step` and
 * `result`. Its two options drop fields they do not know (§1.7), so they no
 * longer exclude each other by their fields: an answer carrying both would
 * parse as whichever comes first, and a client would answer a step of a join
 * the server says is over. So the keys are checked on the answer as sent,
 * before either option drops anything (`answerSchema` refuses such a union
 * for the same reason; this one has no `type` to discriminate on).
 */
export const JoinResponse = z.looseObject({}).refine(
  (answer) => ("step" in answer) !== ("result" in answer),
  { message: "expected exactly one of step and result" },
).pipe(z.union([StepResponse, ResultResponse]));
/** A join response. */
export type JoinResponse = z.infer<typeof JoinResponse>;
