/**
 * A client of the admin API (docs/protocol.md §5) over plain `fetch`. Every
 * request is signed with the admin identity (§2); server errors come back as
 * {@linkcode ServerResponseError} with the server's stable code.
 *
 * @module
 */
import { type ErrorCode, errorFromWire, KeyboundError } from "../errors.ts";
import { type RequestSigner, signRequest } from "../protocol/signed_request.ts";
import type { Kind } from "../resources/schemas.ts";
import type { AnyResource, CreatableResource } from "../resources/validate.ts";
import type { AuditEvent } from "../server/audit.ts";

/** An error answered by the auth service; the message reads `[CODE] server message`. */
export class ServerResponseError extends KeyboundError {
  /** The server's message, without the code. */
  readonly serverMessage: string;

  /**
   * An error the server answered.
   * @param code the server's stable error code
   * @param message the server's message
   */
  constructor(code: ErrorCode, message: string) {
    super(code, `[${code}] ${message}`);
    this.name = "ServerResponseError";
    this.serverMessage = message;
  }
}

/** `GET /v1/status`. */
export interface ClusterStatus {
  /** Cluster name. */
  cluster_name: string;
  /** Auth service version. */
  server_version: string;
  /** `sha256:<hex>` pin of the host CA. */
  ca_pin: string;
  /** Pins of the host and user CAs. */
  ca_pins?: { host?: string; user?: string };
}

/** What tctl needs from the auth service; {@linkcode AdminApiClient} implements it over HTTP. */
export interface AdminApi {
  /** Base URL of the auth service, e.g. `https://127.0.0.1:3025`. */
  readonly baseUrl: string;
  /** Cluster name, version and CA pins. */
  status(): Promise<ClusterStatus>;
  /** Every resource of a kind. */
  list(kind: Kind): Promise<AnyResource[]>;
  /** One resource (`bot/id` for bot instances); `NOT_FOUND` if absent. */
  get(kind: Kind, name: string): Promise<AnyResource>;
  /** Creates (or with `upsert` overwrites) a resource. */
  put(
    resource: CreatableResource,
    mode: "create" | "upsert",
  ): Promise<{ item: AnyResource; created: boolean }>;
  /** Deletes a resource. */
  delete(kind: Kind, name: string): Promise<void>;
  /** Sets a token's `rotate_after` to now. */
  rotateToken(name: string): Promise<AnyResource>;
  /** Audit events, newest first. */
  audit(options?: { type?: string; limit?: number }): Promise<AuditEvent[]>;
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

/** Path of a resource: each name part percent-encoded, bot instances as `bot/id`. */
function resourcePath(kind: Kind, name?: string): string {
  const base = `/v1/resources/${kind}`;
  if (name === undefined) return base;
  return `${base}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * The useful part of a fetch failure: runtimes wrap the TLS or socket error
 * in a generic "fetch failed" whose `cause` says what actually went wrong.
 */
export function connectionProblem(err: unknown): string {
  const inner = (err as { cause?: unknown })?.cause;
  const message = (inner instanceof Error ? inner : err as Error)?.message ?? String(err);
  const short = message.replace(/^error sending request for url \([^)]*\): /, "");
  return /certificate|UnknownIssuer|NotValidForName/i.test(short)
    ? `${short} (the server's certificate does not verify against the host CA in the identity ` +
      "file; --insecure skips verification)"
    : short;
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

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = body === undefined ? "" : JSON.stringify(body);
    const headers: Record<string, string> = {
      authorization: await signRequest(this.#signer, { method, path, body: text }),
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await this.#fetch(this.baseUrl + path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: text }),
      });
    } catch (cause) {
      throw new KeyboundError(
        "CONNECTION_FAILED",
        `cannot reach the auth service at ${this.baseUrl}: ${connectionProblem(cause)}`,
        { cause },
      );
    }
    const raw = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = raw ? JSON.parse(raw) : undefined;
    } catch {
      // Handled below: a non-JSON body is reported by status.
    }
    if (!res.ok) {
      const e = errorFromWire(res.status, parsed);
      throw new ServerResponseError(e.code, e.message);
    }
    if (parsed === undefined) {
      throw new KeyboundError("CONNECTION_FAILED", `${method} ${path}: response is not JSON`);
    }
    return parsed as T;
  }

  /** `GET /v1/status`. */
  status(): Promise<ClusterStatus> {
    return this.#call("GET", "/v1/status");
  }

  /** `GET /v1/resources/{kind}`. */
  async list(kind: Kind): Promise<AnyResource[]> {
    return (await this.#call<{ items: AnyResource[] }>("GET", resourcePath(kind))).items;
  }

  /** `GET /v1/resources/{kind}/{name}`. */
  async get(kind: Kind, name: string): Promise<AnyResource> {
    return (await this.#call<{ item: AnyResource }>("GET", resourcePath(kind, name))).item;
  }

  /** `PUT /v1/resources/{kind}/{name}`. */
  async put(
    resource: CreatableResource,
    mode: "create" | "upsert",
  ): Promise<{ item: AnyResource; created: boolean }> {
    const r = await this.#call<{ item: AnyResource; created?: boolean }>(
      "PUT",
      resourcePath(resource.kind, resource.metadata.name),
      { resource, mode },
    );
    return { item: r.item, created: r.created ?? mode === "create" };
  }

  /** `DELETE /v1/resources/{kind}/{name}`. */
  async delete(kind: Kind, name: string): Promise<void> {
    await this.#call("DELETE", resourcePath(kind, name));
  }

  /** `POST /v1/tokens/{name}/rotate`. */
  async rotateToken(name: string): Promise<AnyResource> {
    const path = `/v1/tokens/${encodeURIComponent(name)}/rotate`;
    return (await this.#call<{ item: AnyResource }>("POST", path)).item;
  }

  /** `GET /v1/audit`. */
  async audit(options: { type?: string; limit?: number } = {}): Promise<AuditEvent[]> {
    const q = new URLSearchParams();
    if (options.type) q.set("type", options.type);
    if (options.limit !== undefined) q.set("limit", String(options.limit));
    // signRequest signs the path only: a query string is not part of `htu` (protocol §2).
    const path = q.size ? `/v1/audit?${q}` : "/v1/audit";
    return (await this.#call<{ items: AuditEvent[] }>("GET", path)).items;
  }
}
