/**
 * The X.509 subject of Keybound client certificates (docs/protocol.md §2):
 * building it for bots and the admin, and reading an identity back out of it.
 *
 * @module
 */
import type { NameAttribute } from "../pki/x509.ts";

export type { NameAttribute };

/** Attribute OIDs of identity subjects. */
export const SUBJECT_OIDS = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  /** Teleport: bot name. */
  botName: "1.3.9999.2.18",
  /** Teleport: bot instance id. */
  botInstanceId: "1.3.9999.2.20",
  /** Teleport: generation counter. */
  generation: "1.3.9999.1.14",
  /** Keybound: the join token a bot joined with. */
  joinToken: "1.3.9999.2.21",
  /** Keybound: what a certificate is for when it is not an identity (`output`). */
  usage: "1.3.9999.2.22",
  /** Keybound: the enrolled browser a console certificate belongs to. */
  browserId: "1.3.9999.2.23",
} as const;

/**
 * X.509's upper bound on a common name and an organization name, in
 * characters (RFC 5280 ub-common-name, ub-organization-name): every name
 * Keybound puts in a subject's CN or O must fit.
 */
export const X509_NAME_UPPER_BOUND = 64;

/** What a bot's user name puts before its name (see {@linkcode botUserName}). */
const BOT_USER_PREFIX = "bot-";

/**
 * The longest name a new bot may take: its certificates' common name (and
 * its own role, an organization) is `bot-<name>`, within X.509's bound.
 */
export const MAX_NEW_BOT_NAME = X509_NAME_UPPER_BOUND - BOT_USER_PREFIX.length;

/** The `usage` of certificates issued for `identity` outputs: never a bot identity. */
export const OUTPUT_CERT_USAGE = "output";

/** The role name every admin identity carries. */
export const ADMIN_ROLE = "@admin";
/** The user name of the admin identity. */
export const ADMIN_USERNAME = "admin";

/** An identity as its certificate subject states it. */
export interface SubjectIdentity {
  /** CN: `bot-<name>` or `admin`. */
  username: string;
  /** Every O attribute, in order. */
  roles: string[];
  /** Bot name (bots only). */
  botName?: string;
  /** Bot instance id (bots only). */
  botInstanceId?: string;
  /** Generation counter (bots only). */
  generation?: number;
  /** Join token name (bots only). */
  joinToken?: string;
  /** Usage attribute; set only on certificates that must not act as an identity. */
  usage?: string;
  /** Enrolled browser id (console certificates only, src/server/web/). */
  browserId?: string;
}

/** Input of {@linkcode botSubject}. */
export interface BotSubjectInput {
  /** Bot name, without the `bot-` prefix. */
  botName: string;
  /** Bot instance id (UUID). */
  botInstanceId: string;
  /** Generation counter the certificate carries. */
  generation: number;
  /** Join token name. */
  joinToken: string;
  /** Roles; defaults to `[bot-<name>]`. */
  roles?: string[];
}

/**
 * The user name of bot `name`: `bot-<name>`, as Teleport names a bot's user
 * and its default role.
 *
 * @example
 * ```ts
 * import { botUserName } from "./subject.ts";
 * botUserName("ci"); // "bot-ci"
 * ```
 */
export function botUserName(name: string): string {
  return `${BOT_USER_PREFIX}${name}`;
}

/** The subject of a bot certificate. */
export function botSubject(b: BotSubjectInput): NameAttribute[] {
  const user = botUserName(b.botName);
  return [
    { oid: SUBJECT_OIDS.commonName, value: user },
    ...(b.roles ?? [user]).map((r) => ({ oid: SUBJECT_OIDS.organization, value: r })),
    { oid: SUBJECT_OIDS.botName, value: b.botName },
    { oid: SUBJECT_OIDS.botInstanceId, value: b.botInstanceId },
    { oid: SUBJECT_OIDS.generation, value: String(b.generation) },
    { oid: SUBJECT_OIDS.joinToken, value: b.joinToken },
  ];
}

/** The attributes {@linkcode botSubject} writes, and only those. */
const JOIN_SUBJECT_OIDS: ReadonlySet<string> = new Set([
  SUBJECT_OIDS.commonName,
  SUBJECT_OIDS.organization,
  SUBJECT_OIDS.botName,
  SUBJECT_OIDS.botInstanceId,
  SUBJECT_OIDS.generation,
  SUBJECT_OIDS.joinToken,
]);

/**
 * Whether `attrs` has exactly the shape {@linkcode botSubject} builds, the
 * subject of a join's certificate: CN `bot-<name>`, bot name, instance id,
 * generation and join token once each, any number of roles (O), and no other
 * attribute. An allow-list, not a deny-list of the `usage` of an output and
 * the browser id of a console certificate: an attribute added later is not a
 * join's until this says so. The user CA's Ed25519 key signs nothing else,
 * so request auth accepts nothing else from it.
 */
export function isJoinSubject(attrs: NameAttribute[]): boolean {
  if (!attrs.every((a) => JOIN_SUBJECT_OIDS.has(a.oid))) return false;
  const id = identityFromSubject(attrs);
  return typeof id !== "string" && id.botName !== undefined &&
    id.username === botUserName(id.botName) && id.botInstanceId !== undefined &&
    id.generation !== undefined && id.joinToken !== undefined;
}

/** Input of {@linkcode outputSubject}. */
export interface OutputSubjectInput {
  /** Bot name, without the `bot-` prefix. */
  botName: string;
  /** Join token name of the bot identity that asked, when it has one. */
  joinToken?: string;
  /** Roles; defaults to `[bot-<name>]`. */
  roles?: string[];
}

/**
 * The subject of an `identity` output certificate: the bot's user, roles,
 * name and join token, but no instance id or generation, and a `usage`
 * attribute so that the server never accepts it as the bot's identity.
 */
export function outputSubject(b: OutputSubjectInput): NameAttribute[] {
  const user = botUserName(b.botName);
  return [
    { oid: SUBJECT_OIDS.commonName, value: user },
    ...(b.roles ?? [user]).map((r) => ({ oid: SUBJECT_OIDS.organization, value: r })),
    { oid: SUBJECT_OIDS.botName, value: b.botName },
    ...(b.joinToken === undefined ? [] : [{ oid: SUBJECT_OIDS.joinToken, value: b.joinToken }]),
    { oid: SUBJECT_OIDS.usage, value: OUTPUT_CERT_USAGE },
  ];
}

/** The subject of the admin identity. */
export function adminSubject(): NameAttribute[] {
  return [
    { oid: SUBJECT_OIDS.commonName, value: ADMIN_USERNAME },
    { oid: SUBJECT_OIDS.organization, value: ADMIN_ROLE },
  ];
}

/** The user name of enrolled browser `id`: what a lock's `user` target names. */
export function browserUserName(id: string): string {
  return `web-${id}`;
}

/**
 * The subject of an enrolled browser's console certificate: the admin role,
 * its own user name (so a lock can name one browser) and its browser id,
 * which makes the server check the browser's record on every request.
 */
export function browserSubject(id: string): NameAttribute[] {
  return [
    { oid: SUBJECT_OIDS.commonName, value: browserUserName(id) },
    { oid: SUBJECT_OIDS.organization, value: ADMIN_ROLE },
    { oid: SUBJECT_OIDS.browserId, value: id },
  ];
}

/**
 * Reads an identity from subject attributes. Returns a string describing the
 * problem when the subject is not a valid identity (no or repeated CN,
 * repeated bot attributes, non-decimal generation).
 */
export function identityFromSubject(attrs: NameAttribute[]): SubjectIdentity | string {
  // One pass over the attributes, not one per OID asked about (every
  // request's certificate and every issued one goes through here).
  const byOid = new Map<string, string[]>();
  for (const a of attrs) {
    const values = byOid.get(a.oid);
    if (values) values.push(a.value);
    else byOid.set(a.oid, [a.value]);
  }
  const all = (oid: string) => byOid.get(oid) ?? [];
  const single = (oid: string, what: string): string | undefined | { error: string } => {
    const v = all(oid);
    return v.length > 1 ? { error: `certificate subject has more than one ${what}` } : v[0];
  };
  const cn = single(SUBJECT_OIDS.commonName, "common name");
  const botName = single(SUBJECT_OIDS.botName, "bot name");
  const botInstanceId = single(SUBJECT_OIDS.botInstanceId, "bot instance id");
  const generation = single(SUBJECT_OIDS.generation, "generation");
  const joinToken = single(SUBJECT_OIDS.joinToken, "join token");
  const usage = single(SUBJECT_OIDS.usage, "usage");
  const browserId = single(SUBJECT_OIDS.browserId, "browser id");
  for (const v of [cn, botName, botInstanceId, generation, joinToken, usage, browserId]) {
    if (typeof v === "object") return v.error;
  }
  if (typeof cn !== "string" || cn === "") return "certificate subject has no common name";
  const out: SubjectIdentity = { username: cn, roles: all(SUBJECT_OIDS.organization) };
  if (typeof botName === "string") out.botName = botName;
  if (typeof botInstanceId === "string") out.botInstanceId = botInstanceId;
  if (typeof joinToken === "string") out.joinToken = joinToken;
  if (typeof usage === "string") out.usage = usage;
  if (typeof browserId === "string") out.browserId = browserId;
  if (typeof generation === "string") {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(generation)) {
      return "certificate generation is not a decimal number";
    }
    out.generation = Number(generation);
  }
  return out;
}
