/**
 * Names stored before their bounds (docs/operations.md, "Bot and role
 * names"): a bot or role written by an older version may be longer than
 * X.509 lets a subject name be, or a bot's roles may grant more logins than
 * OpenSSH reads in one certificate. Such a bot keeps getting certificates
 * (OpenSSL reads them; stricter tools may not), so the operator is told, once
 * per name and logger, not at every renewal.
 *
 * @module
 */
import { MAX_NEW_BOT_NAME, X509_NAME_UPPER_BOUND } from "../protocol/subject.ts";
import { type Bot, SSH_CERT_MAX_PRINCIPALS } from "../resources/schemas.ts";
import { LruMap } from "../util/lru.ts";
import type { Logger } from "../util/log.ts";

/** Names remembered as warned about, per logger; a name evicted is warned about again. */
const WARNED_NAMES = 10_000;

/** Per logger (one per server context), so a test's fresh logger sees its own warnings. */
const warnedBy = new WeakMap<Logger, LruMap<string, true>>();

/** Warns with `msg` unless `key` was warned about already through `log`. */
function warnOnce(log: Logger, key: string, msg: string, fields: Record<string, unknown>): void {
  let warned = warnedBy.get(log);
  if (!warned) warnedBy.set(log, warned = new LruMap(WARNED_NAMES));
  if (warned.get(key)) return;
  warned.set(key, true);
  log.warn(msg, fields);
}

/** Where the log lines send the operator. */
const SEE = "docs/operations.md, Bot and role names";

/**
 * Logs a WARN, once per name, for what a bot's certificates about to be
 * issued carry beyond a bound: its name (the common name `bot-<name>`), a
 * role (an organization name), or `principals` SSH principals (its roles'
 * logins together; once per bot and count, so a change is told again).
 * Names are log fields, escaped by the logger; nothing secret is logged.
 */
export function warnNamesOverBounds(log: Logger, bot: Bot, principals: number): void {
  const name = bot.metadata.name;
  if (name.length > MAX_NEW_BOT_NAME) {
    warnOnce(log, `bot\0${name}`, "a stored bot's name is longer than a new bot's may be", {
      bot: name,
      length: name.length,
      max: MAX_NEW_BOT_NAME,
      why: `its certificates' common name exceeds X.509's ${X509_NAME_UPPER_BOUND} characters; ` +
        `strict X.509 parsers may refuse them (${SEE})`,
    });
  }
  for (const role of bot.spec.roles) {
    if (role.length <= X509_NAME_UPPER_BOUND) continue;
    warnOnce(log, `role\0${role}`, "a stored role's name is longer than a certificate carries", {
      role,
      length: role.length,
      max: X509_NAME_UPPER_BOUND,
      bot: name,
      why: `its bots' certificates carry it as an organization name, which X.509 bounds at ` +
        `${X509_NAME_UPPER_BOUND} characters; strict X.509 parsers may refuse them (${SEE})`,
    });
  }
  if (principals > SSH_CERT_MAX_PRINCIPALS) {
    warnOnce(
      log,
      `logins\0${name}\0${principals}`,
      "the bot's SSH certificate has more principals than OpenSSH reads",
      { bot: name, principals, max: SSH_CERT_MAX_PRINCIPALS, see: SEE },
    );
  }
}
