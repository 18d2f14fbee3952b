/**
 * An auth service on loopback (plain HTTP, port 0) for Worker tests: a
 * bootstrapped in-memory cluster behind the real hono app and Deno server.
 *
 * @module
 */
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { type AppOptions, createApp } from "../../src/server/app.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { issueAdminIdentityFile } from "../../src/server/identity.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import { silentLogger } from "../../src/util/log.ts";
import { type FetchApp, serveApp } from "../../runtime-adapters/deno/serve.ts";

/** A running loopback auth service. */
export interface LoopbackAuth extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The server context (backend, CAs). */
  ctx: ServerContext;
  /** Admin API client signed with the admin identity. */
  api: AdminApiClient;
}

/** Options of {@linkcode startLoopbackAuth}. */
export interface LoopbackAuthOptions {
  /** Wraps the auth app before serving it (say, to serve test pages beside it). */
  around?: (app: FetchApp) => FetchApp;
  /** Options of the auth app (say, `webOrigins`). */
  app?: AppOptions;
}

/** Starts the auth service (real clock) for cluster `clusterName`. */
export async function startLoopbackAuth(
  clusterName = "edge.example",
  options: LoopbackAuthOptions = {},
): Promise<LoopbackAuth> {
  const ctx = await bootstrapCluster(new MemoryBackend(), {
    clusterName,
    log: silentLogger,
    version: "0.0.0-test",
  });
  const app = createApp(ctx, options.app);
  const server = serveApp(options.around?.(app) ?? app, { hostname: "127.0.0.1", port: 0 });
  const admin = await parseIdentityFile(await issueAdminIdentityFile(ctx));
  const api = new AdminApiClient({
    baseUrl: server.url,
    signer: { certDer: admin.certDer, privateKey: admin.privateKey },
  });
  return {
    url: server.url,
    ctx,
    api,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/**
 * An admin client with an identity issued now: a user CA rotation drops the
 * key that signed {@linkcode LoopbackAuth.api}'s identity.
 */
export async function currentAdmin(auth: LoopbackAuth): Promise<AdminApiClient> {
  const id = await parseIdentityFile(await issueAdminIdentityFile(auth.ctx));
  return new AdminApiClient({
    baseUrl: auth.url,
    signer: { certDer: id.certDer, privateKey: id.privateKey },
  });
}
