/**
 * Resource references as tctl spells them: `KIND[/NAME]`, kinds singular or
 * plural, bot instances as `bot_instance/BOT/UUID`.
 *
 * @module
 */
import { BadParameterError } from "../../errors.ts";
import { ALL_KINDS, type Kind } from "../../resources/schemas.ts";

const KIND_ALIASES: Record<string, Kind> = {
  bot: "bot",
  bots: "bot",
  token: "token",
  tokens: "token",
  role: "role",
  roles: "role",
  lock: "lock",
  locks: "lock",
  bot_instance: "bot_instance",
  bot_instances: "bot_instance",
  workload_identity: "workload_identity",
  workload_identities: "workload_identity",
};

/** A parsed `KIND[/NAME]`. */
export interface ResourceRef {
  /** The canonical (singular) kind. */
  kind: Kind;
  /** The name, if given (`BOT/UUID` for bot instances). */
  name?: string;
}

/** The canonical kind of `text` (singular or plural); throws on unknown kinds. */
export function parseKind(text: string): Kind {
  const kind = KIND_ALIASES[text.toLowerCase()];
  if (!kind) {
    throw new BadParameterError(
      `unknown resource kind "${text}" (kinds: ${ALL_KINDS.join(", ")})`,
    );
  }
  return kind;
}

/** Parses `KIND[/NAME]`; the name is everything after the first `/`. */
export function parseResourceRef(text: string): ResourceRef {
  const slash = text.indexOf("/");
  if (slash < 0) return { kind: parseKind(text) };
  const name = text.slice(slash + 1);
  if (!name) throw new BadParameterError(`"${text}": missing name after "/"`);
  return { kind: parseKind(text.slice(0, slash)), name };
}
