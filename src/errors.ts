/**
 * One error hierarchy for server, agent and CLI. Every error carries a stable
 * `code` (part of the wire protocol, see docs/protocol.md) and the HTTP status
 * the server answers with. Messages are safe to show to clients: they never
 * contain keys, secrets or internal details.
 *
 * @module
 */

/** Stable error codes. Clients switch on these; never rename one. */
export const ERROR_CODES = {
  BAD_PARAMETER: 400,
  BAD_REQUEST: 400,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAUTHENTICATED: 401,
  CA_KEY_DROPPED: 401,
  BROWSER_REVOKED: 401,
  ACCESS_DENIED: 403,
  LOCKED: 403,
  ORIGIN_NOT_ALLOWED: 403,
  ENROLLMENT_CODE_INVALID: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  ROTATION_IN_PROGRESS: 409,
  ROTATION_PHASE_INVALID: 400,
  CHALLENGE_FAILED: 403,
  NO_RECOVERIES_REMAINING: 403,
  REGISTRATION_SECRET_INVALID: 403,
  JOIN_STATE_INVALID: 403,
  JOIN_STATE_REQUIRED: 403,
  ONBOARDING_WITH_CREDENTIALS: 400,
  TOKEN_STATE_CORRUPT: 400,
  STATIC_KEY_ROTATION: 400,
  GENERATION_MISMATCH: 403,
  SESSION_INVALID: 400,
  RESUME_NOT_FOUND: 404,
  RESUME_PROOF_INVALID: 403,
  UNEXPECTED_BACKEND_STATE: 409,
  NOT_IMPLEMENTED: 501,
  CONFIG_INVALID: 400,
  STORAGE_ERROR: 500,
  HOOK_FAILED: 500,
  SHARING_FAILED: 500,
  CONNECTION_FAILED: 502,
  /** Reset while connecting, before a byte of the request was written: safe to send again. */
  CONNECTION_RESET_BEFORE_SEND: 502,
  TLS_UNTRUSTED: 502,
  BAD_SERVER_RESPONSE: 502,
  BACKEND_UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

/** A stable error code string. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options for {@linkcode KeyboundError}. */
export interface KeyboundErrorOptions {
  /** The underlying error, kept for logs only; never sent to clients. */
  cause?: unknown;
  /** Extra machine-readable detail that is safe to expose (field paths, ...). */
  details?: Record<string, unknown>;
}

/** Base class of every error Keybound raises on purpose. */
export class KeyboundError extends Error {
  /** Stable code, see {@linkcode ERROR_CODES}. */
  readonly code: ErrorCode;
  /** Safe, structured detail (for example the field path of a config error). */
  readonly details?: Record<string, unknown>;

  /**
   * Creates an error with a stable code.
   * @param code stable error code
   * @param message human readable, client-safe message
   * @param options cause and details
   */
  constructor(code: ErrorCode, message: string, options: KeyboundErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KeyboundError";
    this.code = code;
    this.details = options.details;
  }

  /** HTTP status the server uses for this error. */
  get status(): number {
    return ERROR_CODES[this.code];
  }

  /** The JSON body sent on the wire: `{"error":{"code","message"}}`. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details ? { details: this.details } : {}),
      },
    };
  }
}

/** Invalid input from a user or client (BadParameter in Teleport). */
export class BadParameterError extends KeyboundError {
  /**
   * Creates the error.
   * @param message what is wrong, naming the field
   * @param options cause and details
   */
  constructor(message: string, options?: KeyboundErrorOptions) {
    super("BAD_PARAMETER", message, options);
    this.name = "BadParameterError";
  }
}

/** The caller is known but not allowed (AccessDenied in Teleport). */
export class AccessDeniedError extends KeyboundError {
  /**
   * Creates the error.
   * @param message client-safe reason
   * @param options cause and details
   * @param code a more specific access-denied code
   */
  constructor(
    message: string,
    options?: KeyboundErrorOptions,
    code: ErrorCode = "ACCESS_DENIED",
  ) {
    super(code, message, options);
    this.name = "AccessDeniedError";
  }
}

/** A browser request came from an origin the auth service does not list (`--web-origin`). */
export class OriginNotAllowedError extends KeyboundError {
  /**
   * Creates the error.
   * @param message which origin was refused
   * @param options cause and details
   */
  constructor(message: string, options?: KeyboundErrorOptions) {
    super("ORIGIN_NOT_ALLOWED", message, options);
    this.name = "OriginNotAllowedError";
  }
}

/** A resource does not exist. */
export class NotFoundError extends KeyboundError {
  /**
   * Creates the error.
   * @param message which resource is missing
   * @param options cause and details
   */
  constructor(message: string, options?: KeyboundErrorOptions) {
    super("NOT_FOUND", message, options);
    this.name = "NotFoundError";
  }
}

/** A resource exists where a new one was to be created. */
export class AlreadyExistsError extends KeyboundError {
  /**
   * Creates the error.
   * @param message which resource exists
   * @param options cause and details
   */
  constructor(message: string, options?: KeyboundErrorOptions) {
    super("ALREADY_EXISTS", message, options);
    this.name = "AlreadyExistsError";
  }
}

/** A configuration file or flag is invalid. */
export class ConfigError extends KeyboundError {
  /**
   * Creates the error.
   * @param message what is wrong, naming the file, path and line
   * @param options cause and details
   */
  constructor(message: string, options?: KeyboundErrorOptions) {
    super("CONFIG_INVALID", message, options);
    this.name = "ConfigError";
  }
}

/**
 * The certificate was issued by a user CA key that a completed rotation
 * dropped (docs/protocol.md §10): the bot missed the rotation and recovers
 * with its bound key.
 */
export class CaKeyDroppedError extends KeyboundError {
  /**
   * The certificate's SHA-256 (hex) when the request was signed with the
   * certificate's own key while the certificate was within its validity: the
   * caller is the bot the cluster issued it to, not someone guessing, so the
   * per-source rate limit grants it a few uncharged answers. Never sent on
   * the wire.
   */
  readonly provenHolder?: string;

  /**
   * Creates the error.
   * @param message client-safe reason
   * @param provenHolder the certificate's hash, if the caller proved it holds its key
   */
  constructor(message: string, provenHolder?: string) {
    super("CA_KEY_DROPPED", message);
    this.name = "CaKeyDroppedError";
    if (provenHolder !== undefined) this.provenHolder = provenHolder;
  }
}

/**
 * An answer of the auth service that fails the client's own checks (a join
 * result without a certificate, or one for another key). Client side, never
 * on the wire: the server (or a proxy in between) misbehaved, so unlike
 * {@linkcode BadParameterError} it is not the caller's fault, and retrying
 * may help.
 */
export class BadServerResponseError extends KeyboundError {
  /**
   * Creates the error.
   * @param message what the answer lacks
   * @param options cause and details
   */
  constructor(message: string, options?: KeyboundErrorOptions) {
    super("BAD_SERVER_RESPONSE", message, options);
    this.name = "BadServerResponseError";
  }
}

/**
 * An error the auth service answered with, rebuilt on the client with the
 * server's code and message (so a CLI can show which side refused).
 */
export class ServerError extends KeyboundError {
  /**
   * Creates the error.
   * @param code the server's stable code
   * @param message the server's message
   * @param details the server's structured detail (for example which item of a batch it refused)
   */
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details ? { details } : {});
    this.name = "ServerError";
  }
}

/**
 * The message of any thrown value, for logs and one-line displays: thrown
 * values need not be `Error`s, so callers never cast to read `.message`.
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Adds context (a field path, a file name) to a failure. A
 * {@linkcode KeyboundError} keeps its code; anything else gets `code`. The
 * original is kept as `cause`.
 */
export function inContext(
  prefix: string,
  err: unknown,
  code: ErrorCode,
  details?: Record<string, unknown>,
): KeyboundError {
  return new KeyboundError(
    err instanceof KeyboundError ? err.code : code,
    `${prefix}: ${errorMessage(err)}`,
    { cause: err, ...(details ? { details } : {}) },
  );
}

/** Returns true if `err` is a {@linkcode KeyboundError}, optionally with `code`. */
export function isKeyboundError(err: unknown, code?: ErrorCode): err is KeyboundError {
  return err instanceof KeyboundError && (code === undefined || err.code === code);
}

/**
 * Rebuilds the error of a server's JSON error body, so the agent and CLI see
 * the same codes as the server raised. The one decoder of the wire format.
 */
export function errorFromWire(status: number, body: unknown): KeyboundError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)
    ?.error;
  if (e && typeof e.code === "string" && e.code in ERROR_CODES && typeof e.message === "string") {
    const details = e.details !== null && typeof e.details === "object" && !Array.isArray(e.details)
      ? e.details as Record<string, unknown>
      : undefined;
    return new ServerError(e.code as ErrorCode, e.message, details);
  }
  return new KeyboundError(
    status >= 500 ? "CONNECTION_FAILED" : "BAD_REQUEST",
    `server answered HTTP ${status} without a Keybound error body`,
  );
}
