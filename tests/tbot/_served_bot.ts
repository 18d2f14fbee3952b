/**
 * A test cluster served over HTTPS on loopback with bot `example` and a
 * token holding a registration secret, plus a temporary directory with a
 * `tbot.yaml` that joins it. `await using` stops and removes everything.
 *
 * @module
 */
import { type Cluster, clusterWithBot } from "../agent/_cluster.ts";
import { tbotYaml, type YamlOptions } from "./_harness.ts";

/** See the module doc. */
export interface ServedBot extends AsyncDisposable {
  /** The cluster. */
  cluster: Cluster;
  /** The registration secret of token `example`. */
  secret: string;
  /** The temporary directory (0700). */
  dir: string;
  /** Path of the `tbot.yaml` written by {@linkcode ServedBot.writeConfig}. */
  config: string;
  /** Writes `tbot.yaml` for this cluster; `storage` is relative to `dir`. */
  writeConfig(o: Omit<YamlOptions, "address" | "pins" | "secret">): Promise<void>;
}

/** Starts the cluster and creates the directory. */
export async function servedBot(prefix = "keybound-bot-"): Promise<ServedBot> {
  const { cluster, secret } = await clusterWithBot();
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix });
  const config = `${dir}/tbot.yaml`;
  return {
    cluster,
    secret,
    dir,
    config,
    writeConfig: (o) =>
      Deno.writeTextFile(
        config,
        tbotYaml({ ...o, address: served.address, pins: [cluster.pin], secret }),
      ),
    async [Symbol.asyncDispose]() {
      await served.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
