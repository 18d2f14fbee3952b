/**
 * A client of the admin API (docs/protocol.md §5) over the one API client
 * ({@linkcode callApi}): every request is signed with the admin identity
 * (§2), server errors keep the server's stable code, and every answer is
 * validated against its wire schema.
 *
 * @module
 */
import {
  AUDIT_PATH,
  type AuditList,
  AuditListResponse,
  type AuditQuery,
  MAX_LIST_PAGE,
  PUT_RESOURCES_PATH,
  putResourceResponse,
  putResourcesResponse,
  RawResourceListResponse,
  RawResourceResponse,
  resourceAsSent,
  resourceForUpdate,
  type ResourceList,
  resourceListResponse,
  resourcePath,
  type ResourceQuery,
  resourceResponse,
  tokenRotatePath,
} from "../protocol/admin.ts";
import {
  caAdminPath,
  CaExport,
  caRotatePath,
  CaStatus,
  type CaTypeName,
  type RotateRequest,
} from "../protocol/ca_rotation.ts";
import { ClusterStatus, STATUS_PATH } from "../protocol/discovery.ts";
import { type ApiCall, callApi, IgnoredAnswer } from "../protocol/http_client.ts";
import type { RequestSigner } from "../protocol/signed_request.ts";
import type {
  CreatableKind,
  CreatableResource,
  Kind,
  ResourceOf,
  Token,
} from "../resources/schemas.ts";
import type * as z from "zod";
import {
  type CreateEnrollmentRequest,
  CreateEnrollmentResponse,
  WEB_BROWSERS_PATH,
  WEB_ENROLLMENTS_PATH,
  WEB_WHOAMI_PATH,
  type WebBrowser,
  WebBrowserListResponse,
  webBrowserPath,
  WhoamiResponse,
} from "../protocol/web.ts";

export type { ClusterStatus };

/** What tctl needs from the auth service; {@linkcode AdminApiClient} implements it over HTTP. */
export interface AdminApi {
  /** Base URL of the auth service, e.g. `https://127.0.0.1:3025`. */
  readonly baseUrl: string;
  /** Cluster name, version and CA pins. */
  status(): Promise<ClusterStatus>;
  /**
   * Every resource of a kind, read page by page (for exports such as `tctl
   * get KIND`). With `asSent`, each as the server sent it (see `get`).
   */
  list<K extends Kind>(
    kind: K,
    query?: Omit<ResourceQuery, "after" | "limit">,
    options?: { asSent?: boolean },
  ): Promise<ResourceOf<K>[]>;
  /** One page of the resources of a kind, in name order. */
  listPage<K extends Kind>(kind: K, query?: ResourceQuery): Promise<ResourceList<K>>;
  /**
   * One resource (`bot/id` for bot instances); `NOT_FOUND` if absent. With
   * `forUpdate` (a read-modify-write), a field this client does not know is
   * `NOT_IMPLEMENTED` instead of dropped, so the write cannot delete it. With
   * `asSent` (printed for an operator to write back), it is kept as sent, so
   * the write refuses it instead of deleting it. Otherwise it is dropped.
   */
  get<K extends Kind>(
    kind: K,
    name: string,
    options?: { forUpdate?: boolean; asSent?: boolean },
  ): Promise<ResourceOf<K>>;
  /** Creates (or with `upsert` overwrites) a resource. */
  put<R extends CreatableResource>(
    resource: R,
    mode: "create" | "upsert",
  ): Promise<{ item: ResourceOf<R["kind"]>; created: boolean }>;
  /** Creates (or overwrites) several resources in one compare-and-swap, or none of them. */
  putAll(
    resources: CreatableResource[],
    mode: "create" | "upsert",
  ): Promise<{ items: ResourceOf<Kind>[]; created: boolean[] }>;
  /** Deletes a resource. */
  delete(kind: Kind, name: string): Promise<void>;
  /** Sets a token's `rotate_after` to now. */
  rotateToken(name: string): Promise<Token>;
  /** One page of audit events, newest first. */
  audit(options?: AuditQuery): Promise<AuditList>;
  /** Mints a one-time console enrollment code (docs/protocol.md §11). */
  createEnrollment(request: CreateEnrollmentRequest): Promise<CreateEnrollmentResponse>;
  /** Enrolled browsers. */
  browsers(): Promise<WebBrowser[]>;
  /** Revokes an enrolled browser. */
  revokeBrowser(id: string): Promise<void>;
  /** Who the signer is. */
  whoami(): Promise<WhoamiResponse>;
  /** Starts or moves a CA rotation; returns the CA's status after it. */
  rotateCa(type: CaTypeName, request: RotateRequest): Promise<CaStatus>;
  /** Every trusted key of a CA, in each format it has. */
  caExport(type: CaTypeName): Promise<CaExport>;
}

/** Options of {@linkcode AdminApiClient}. */
export interface AdminApiClientOptions {
  /** `https://host:port` (or `http://` on loopback). */
  baseUrl: string;
  /** The admin identity's certificate and key. */
  signer: RequestSigner;
  /** The fetch to use (adapters pass one bound to a TLS client that trusts the host CA). */
  fetch?: typeof fetch;
}

/** The admin API over HTTP with signed requests. */
export class AdminApiClient implements AdminApi {
  /** Base URL without a trailing slash. */
  readonly baseUrl: string;
  #signer: RequestSigner;
  #fetch: typeof fetch;

  /**
   * A client; nothing is sent until the first call.
   * @param options where and as whom to connect
   */
  constructor(options: AdminApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#signer = options.signer;
    this.#fetch = options.fetch ?? fetch;
  }

  #call<S extends z.ZodType>(
    call: Omit<ApiCall<S>, "signer">,
  ): Promise<z.infer<S>> {
    return callApi({ baseUrl: this.baseUrl, fetch: this.#fetch }, {
      ...call,
      signer: this.#signer,
    });
  }

  /** `GET /v1/status`. */
  status(): Promise<ClusterStatus> {
    return this.#call({ method: "GET", path: STATUS_PATH, response: ClusterStatus });
  }

  /** `GET /v1/resources/{kind}`, following `next` until the last page. */
  async list<K extends Kind>(
    kind: K,
    query: Omit<ResourceQuery, "after" | "limit"> = {},
    options: { asSent?: boolean } = {},
  ): Promise<ResourceOf<K>[]> {
    const items: ResourceOf<K>[] = [];
    let after: string | undefined;
    do {
      const pageQuery = { ...query, limit: MAX_LIST_PAGE, after };
      const page = options.asSent
        ? await this.#call({
          method: "GET",
          path: withQuery(resourcePath(kind), pageQuery),
          response: RawResourceListResponse,
        })
        : await this.listPage(kind, pageQuery);
      for (const item of page.items) {
        items.push(options.asSent ? resourceAsSent(kind, item) : item as ResourceOf<K>);
      }
      after = page.next;
    } while (after !== undefined);
    return items;
  }

  /** `GET /v1/resources/{kind}?limit=N&after=CURSOR&bot=BOT`: one page. */
  async listPage<K extends Kind>(kind: K, query: ResourceQuery = {}): Promise<ResourceList<K>> {
    const path = withQuery(resourcePath(kind), query);
    return await this.#call({ method: "GET", path, response: resourceListResponse(kind) });
  }

  /** `GET /v1/resources/{kind}/{name}`. */
  async get<K extends Kind>(
    kind: K,
    name: string,
    options: { forUpdate?: boolean; asSent?: boolean } = {},
  ): Promise<ResourceOf<K>> {
    const path = resourcePath(kind, name);
    if (options.forUpdate || options.asSent) {
      const raw = await this.#call({ method: "GET", path, response: RawResourceResponse });
      return options.forUpdate ? resourceForUpdate(kind, raw.item) : resourceAsSent(kind, raw.item);
    }
    return (await this.#call({ method: "GET", path, response: resourceResponse(kind) })).item;
  }

  /** `PUT /v1/resources/{kind}/{name}`. */
  async put<R extends CreatableResource>(
    resource: R,
    mode: "create" | "upsert",
  ): Promise<{ item: ResourceOf<R["kind"]>; created: boolean }> {
    const kind: CreatableKind = resource.kind;
    const r = await this.#call({
      method: "PUT",
      path: resourcePath(kind, resource.metadata.name),
      body: { resource, mode },
      response: putResourceResponse(resource.kind as R["kind"]),
    });
    return { item: r.item, created: r.created ?? mode === "create" };
  }

  /** `POST /v1/resources`: all of `resources` in one compare-and-swap, or none. */
  async putAll(
    resources: CreatableResource[],
    mode: "create" | "upsert",
  ): Promise<{ items: ResourceOf<Kind>[]; created: boolean[] }> {
    return await this.#call({
      method: "POST",
      path: PUT_RESOURCES_PATH,
      body: { resources, mode },
      response: putResourcesResponse(resources.map((x) => x.kind)),
    });
  }

  /** `DELETE /v1/resources/{kind}/{name}`. */
  async delete(kind: Kind, name: string): Promise<void> {
    await this.#call({ method: "DELETE", path: resourcePath(kind, name), response: IgnoredAnswer });
  }

  /** `POST /v1/tokens/{name}/rotate`. */
  async rotateToken(name: string): Promise<Token> {
    const path = tokenRotatePath(name);
    return (await this.#call({ method: "POST", path, response: resourceResponse("token") })).item;
  }

  /** `POST /v1/cas/{type}/rotate`. */
  rotateCa(type: CaTypeName, request: RotateRequest): Promise<CaStatus> {
    return this.#call({
      method: "POST",
      path: caRotatePath(type),
      body: request,
      response: CaStatus,
    });
  }

  /** `GET /v1/cas/{type}`. */
  caExport(type: CaTypeName): Promise<CaExport> {
    return this.#call({ method: "GET", path: caAdminPath(type), response: CaExport });
  }

  /** `GET /v1/audit`. */
  async audit(options: AuditQuery = {}): Promise<AuditList> {
    const path = withQuery(AUDIT_PATH, options);
    return await this.#call({ method: "GET", path, response: AuditListResponse });
  }

  /** `POST /v1/web/enrollments`. */
  createEnrollment(request: CreateEnrollmentRequest): Promise<CreateEnrollmentResponse> {
    return this.#call({
      method: "POST",
      path: WEB_ENROLLMENTS_PATH,
      body: request,
      response: CreateEnrollmentResponse,
    });
  }

  /** `GET /v1/web/browsers`. */
  async browsers(): Promise<WebBrowser[]> {
    const path = WEB_BROWSERS_PATH;
    return (await this.#call({ method: "GET", path, response: WebBrowserListResponse })).items;
  }

  /** `DELETE /v1/web/browsers/{id}`. */
  async revokeBrowser(id: string): Promise<void> {
    await this.#call({ method: "DELETE", path: webBrowserPath(id), response: IgnoredAnswer });
  }

  /** `GET /v1/web/whoami`. */
  whoami(): Promise<WhoamiResponse> {
    return this.#call({ method: "GET", path: WEB_WHOAMI_PATH, response: WhoamiResponse });
  }
}

/** `path` with the set fields of `query` as its query string. */
function withQuery(path: string, query: AuditQuery | ResourceQuery): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(query) as [string, string | number | undefined][]) {
    if (value !== undefined && value !== "") q.set(name, String(value));
  }
  return q.size ? `${path}?${q}` : path;
}
