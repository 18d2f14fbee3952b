/**
 * The backend server tests run on: Deno KV by default, or, with
 * `KEYBOUND_TEST_BACKEND=durable_object`, a real ClusterState Durable Object
 * in workerd (miniflare) reached over RPC through {@linkcode DoBackend}. The
 * second mode runs the server's existing integration tests against Durable
 * Object storage unchanged.
 *
 * Every open of the same `path` shares one workerd and one object, as two
 * auth Workers share one ClusterState; the object's storage persists in
 * `<path>.do/` so a restarted harness finds its state.
 *
 * @module
 */
import type { Miniflare } from "miniflare";
import type { Backend } from "../../src/storage/backend.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import type { ClusterStateRpc } from "../../runtime-adapters/workers/cluster_state_do.ts";
import { DoBackend } from "../../runtime-adapters/workers/do_backend.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import type { WorkerBundle } from "../../runtime-adapters/workers/build.ts";
import { bundle, startWorker } from "./_harness.ts";

/** The environment variable selecting the backend. */
export const TEST_BACKEND_ENV = "KEYBOUND_TEST_BACKEND";

let script: Promise<WorkerBundle> | undefined;
let scriptDir: string | undefined;
const running = new Map<string, { mf: Promise<Miniflare>; refs: number }>();

// The bundle is shared by every open in this process; remove it at exit.
addEventListener("unload", () => {
  if (scriptDir) Deno.removeSync(scriptDir, { recursive: true });
});

async function openDoBackend(path: string): Promise<Backend> {
  script ??= bundle(new URL("./cluster_state_worker.ts", import.meta.url)).then((b) => {
    scriptDir = b.dir;
    return b;
  });
  let entry = running.get(path);
  if (!entry) {
    const persistDir = `${path}.do`;
    entry = {
      refs: 0,
      mf: (async () => {
        await Deno.mkdir(persistDir, { recursive: true });
        const w = await startWorker((await script!).path, {
          durableObjects: { CLUSTER_STATE: "ClusterState" },
          persistDir,
        });
        return w.mf;
      })(),
    };
    running.set(path, entry);
  }
  entry.refs++;
  const mf = await entry.mf;
  const ns = await mf.getDurableObjectNamespace(
    "CLUSTER_STATE",
  ) as unknown as DurableObjectNamespace<ClusterStateRpc>;
  const stub = ns.get(ns.idFromName("cluster-state"));
  const backend = new DoBackend(() => stub);
  const close = backend.close.bind(backend);
  let closed = false;
  backend.close = async () => {
    await close();
    if (closed) return;
    closed = true;
    if (--entry!.refs === 0) {
      running.delete(path);
      await mf.dispose();
    }
  };
  return backend;
}

/** Opens the test backend for the state at `path` (a Deno KV file path). */
export function openTestBackend(path: string): Promise<Backend> {
  return Deno.env.get(TEST_BACKEND_ENV) === "durable_object"
    ? openDoBackend(path)
    : DenoKvBackend.open(path);
}
