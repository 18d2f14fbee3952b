/**
 * Wire messages of the admin API (docs/protocol.md §5): resource listing,
 * reading, writing and deletion, token rotation and the audit log. Every
 * resource in an answer is validated against its kind's schema, dropping the
 * fields this client does not know (§1.7).
 *
 * @module
 */
import * as z from "zod";
import { type Kind, type ResourceOf, schemaOf } from "../resources/schemas.ts";
import { KeyboundError } from "../errors.ts";
import { unexpectedAnswer } from "./http_client.ts";
import { answerSchema } from "./answer_schema.ts";
import { AuditEvent } from "./audit.ts";

/** Path of the resources of `kind`, or of one (bot instances as `bot/id`, each part encoded). */
export function resourcePath(kind: Kind, name?: string): string {
  const base = `/v1/resources/${kind}`;
  if (name === undefined) return base;
  return `${base}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/** Path of a token's rotation request. */
export function tokenRotatePath(name: string): string {
  return `/v1/tokens/${encodeURIComponent(name)}/rotate`;
}

/** Path of the audit log. */
export const AUDIT_PATH = "/v1/audit";

/** The largest `limit` of one page of a listing (resources and audit), the wire contract. */
export const MAX_LIST_PAGE = 1000;

const answerSchemas = new Map<Kind, z.ZodType>();

/**
 * A resource of `kind` in an answer: its schema (which also checks requests
 * and storage, strictly), dropping at every depth the fields this client does
 * not know (§1.7). Made once per kind.
 */
function resourceAnswer<K extends Kind>(kind: K): z.ZodType<ResourceOf<K>> {
  let schema = answerSchemas.get(kind);
  if (!schema) answerSchemas.set(kind, schema = answerSchema(schemaOf(kind)));
  return schema as z.ZodType<ResourceOf<K>>;
}

/**
 * A resource read to be written back (`tctl edit`, `tctl bots update`):
 * dropping a field this client does not know would delete it from the
 * server's copy with the write, so such a field is refused instead
 * (`NOT_IMPLEMENTED`, naming it: upgrade the client to change the resource).
 * An answer that is not a resource at all is `CONNECTION_FAILED`, as any
 * unexpected answer.
 */
export function resourceForUpdate<K extends Kind>(kind: K, value: unknown): ResourceOf<K> {
  const strict = schemaOf(kind).safeParse(value);
  if (strict.success) return strict.data;
  const unknown = strict.error.issues.flatMap((i) =>
    i.code === "unrecognized_keys" ? i.keys.map((k) => [...i.path, k].join(".")) : []
  );
  if (unknown.length > 0 && resourceAnswer(kind).safeParse(value).success) {
    throw new KeyboundError(
      "NOT_IMPLEMENTED",
      `the server's ${kind} has fields this client does not know (` +
        `${unknown.slice(0, 3).join(", ")}${unknown.length > 3 ? ", …" : ""}); ` +
        "writing it back would drop them: upgrade this client to change it",
    );
  }
  throw unexpectedAnswer(kind, strict.error);
}

/**
 * A resource to be printed for writing back by hand (`tctl get` as YAML or
 * JSON, then `tctl create -f`): checked like any answer (every field this
 * client knows, with its type and bounds), then returned as the server sent
 * it, fields this client does not know included. Dropping them from the
 * printout would delete them from the server's copy at the `create -f`;
 * printed, they reach `create -f`, which refuses a field it does not know.
 */
export function resourceAsSent<K extends Kind>(kind: K, value: unknown): ResourceOf<K> {
  const checked = resourceAnswer(kind).safeParse(value);
  if (!checked.success) {
    throw unexpectedAnswer(kind, checked.error);
  }
  return value as ResourceOf<K>;
}

/** `GET /v1/resources/{kind}` read as sent, each item for {@linkcode resourceAsSent}. */
export const RawResourceListResponse: z.ZodType<{ items: unknown[]; next?: string }> = z.object({
  items: z.array(z.unknown()),
  next: z.string().optional(),
});

/** `GET /v1/resources/{kind}`: one page of the live resources of a kind, in name order. */
export function resourceListResponse<K extends Kind>(
  kind: K,
): z.ZodType<{ items: ResourceOf<K>[]; next?: string }> {
  return z.object({ items: z.array(resourceAnswer(kind)), next: z.string().optional() });
}

/** `GET /v1/resources/{kind}` query: a page size, the previous page's cursor, a bot's instances. */
export interface ResourceQuery {
  /** Page size, 1-1000 (default 100). */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
  /** Bot instances only: the instances of this bot. */
  bot?: string;
}

/** One page of resources; `next` is the cursor of the following page, when more may follow. */
export interface ResourceList<K extends Kind> {
  /** Resources in name order. */
  items: ResourceOf<K>[];
  /** Cursor of the following page. */
  next?: string;
}

/**
 * `GET /v1/resources/{kind}/{name}` read to be written back: the resource as
 * sent, for {@linkcode resourceForUpdate} or {@linkcode resourceAsSent}.
 */
export const RawResourceResponse: z.ZodType<{ item: unknown }> = z.object({ item: z.unknown() });

/** `GET /v1/resources/{kind}/{name}` and `POST /v1/tokens/{name}/rotate`: one resource. */
export function resourceResponse<K extends Kind>(kind: K): z.ZodType<{ item: ResourceOf<K> }> {
  return z.object({ item: resourceAnswer(kind) });
}

/** `PUT /v1/resources/{kind}/{name}` request body. */
export const PutResourceRequest = z.strictObject({
  resource: z.unknown(),
  mode: z.enum(["create", "upsert"]).default("create"),
});
/** A put request. */
export type PutResourceRequest = z.infer<typeof PutResourceRequest>;

/** `PUT /v1/resources/{kind}/{name}` answer. */
export function putResourceResponse<K extends Kind>(
  kind: K,
): z.ZodType<{ item: ResourceOf<K>; created?: boolean }> {
  return z.object({ item: resourceAnswer(kind), created: z.boolean().optional() });
}

/** Path of `POST /v1/resources`: several resources written in one compare-and-swap. */
export const PUT_RESOURCES_PATH = "/v1/resources";

/** Most resources one `POST /v1/resources` writes together (one compare-and-swap). */
export const MAX_PUT_RESOURCES = 16;

/** `POST /v1/resources` answer: the stored resources, in request order, each checked by kind. */
export function putResourcesResponse(
  kinds: readonly Kind[],
): z.ZodType<{ items: ResourceOf<Kind>[]; created: boolean[] }> {
  const items = z.tuple(kinds.map((k) => resourceAnswer(k)) as [z.ZodType, ...z.ZodType[]]);
  return z.object({ items, created: z.array(z.boolean()) }) as unknown as z.ZodType<
    { items: ResourceOf<Kind>[]; created: boolean[] }
  >;
}

/** `GET /v1/audit` answer: events, newest first. */
export const AuditListResponse = z.object({
  items: z.array(AuditEvent),
  next: z.string().optional(),
});
/** One page of the audit log. */
export type AuditList = z.infer<typeof AuditListResponse>;

/** `GET /v1/audit` query: a type filter, a page size and the cursor of the previous page. */
export interface AuditQuery {
  /** Only events of this type. */
  type?: string;
  /** Page size, 1-1000 (default 100). */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
}
