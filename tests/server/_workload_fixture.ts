/**
 * Test fixture for the workload endpoints: a cluster with a bot, its roles and
 * a workload identity, and a helper that sends signed bot requests to the app.
 *
 * @module
 */
import type { RequestSigner } from "../../src/protocol/signed_request.ts";
import { signRequest } from "../../src/protocol/signed_request.ts";
import type { CreatableResource } from "../../src/resources/validate.ts";
import { createApp } from "../../src/server/app.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { putResource } from "../../src/server/resources/mod.ts";
import { botSigner, newCluster, type TestCluster } from "./_cluster_fixture.ts";

/** A cluster ready for workload calls. */
export interface WorkloadCluster extends TestCluster {
  /** The app under test. */
  app: ReturnType<typeof createApp>;
  /** Signer of bot `example`. */
  bot: RequestSigner;
  /** Sends a signed request by `signer` (default: the bot) and returns status and JSON body. */
  call(
    path: string,
    body: unknown,
    signer?: RequestSigner,
  ): Promise<{ status: number; json: Record<string, unknown> }>;
}

/** Stores `resource` as the admin would. */
export async function put(ctx: ServerContext, resource: CreatableResource): Promise<void> {
  await putResource(ctx, resource, "upsert", { user: "admin" });
}

/**
 * Bot `example` with role `workload` (logins `root`, host_cert create,
 * workload_identity_labels `env: dev`) and workload identity `example`
 * (`/bot/{{ user.bot_name }}`, label `env: dev`).
 */
export async function newWorkloadCluster(clusterName?: string): Promise<WorkloadCluster> {
  const cluster = await newCluster(clusterName);
  const { ctx } = cluster;
  await put(ctx, {
    kind: "role",
    version: "v7",
    metadata: { name: "workload" },
    spec: {
      allow: {
        logins: ["root"],
        rules: [{ resources: ["host_cert"], verbs: ["create"] }],
        workload_identity_labels: { env: ["dev"] },
      },
    },
  });
  await put(ctx, {
    kind: "bot",
    version: "v1",
    metadata: { name: "example" },
    spec: { roles: ["workload"], traits: [] },
  });
  await put(ctx, {
    kind: "workload_identity",
    version: "v1",
    metadata: { name: "example", labels: { env: "dev" } },
    spec: { spiffe: { id: "/bot/{{ user.bot_name }}" } },
  });
  const app = createApp(ctx);
  const bot = await botSigner(ctx, "example");
  const call = async (path: string, body: unknown, signer = bot) => {
    const text = JSON.stringify(body);
    const res = await app.fetch(
      new Request(`http://auth.test${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: await signRequest(signer, { method: "POST", path, body: text }),
        },
        body: text,
      }),
    );
    return { status: res.status, json: await res.json() };
  };
  return { ...cluster, app, bot, call };
}
