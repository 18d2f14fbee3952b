/**
 * `tbot start` (a daemon) trusting by `--ca-pin` waits for an auth service
 * that is not up yet: one line per attempt naming the cause, then it joins
 * once the service listens. A server that fails the pin stops it at once
 * (a security failure is not retried), and a oneshot run still fails fast.
 * Real tbot and auth service processes on loopback.
 */
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { Bot, Token } from "../../src/resources/schemas.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { freePort, runTbot, spawnTbot } from "../tbot/_harness.ts";

const RETRY_LINE = "the auth service cannot be reached yet; retrying";
const retryLines = (log: string) => log.split("\n").filter((l) => l.includes(RETRY_LINE));

/** A bootstrapped data directory with a bot and a token; returns the pin and the secret. */
async function provision(dataDir: string): Promise<{ pin: string; secret: string }> {
  const auth = await spawnAuthService({ dataDir, args: ["--cluster-name", "first.example"] });
  const admin = await parseIdentityFile(await Deno.readTextFile(`${dataDir}/admin-identity`));
  const client = Deno.createHttpClient({ caCerts: admin.hostCaPems });
  try {
    const api = new AdminApiClient({
      baseUrl: auth.url,
      signer: { certDer: admin.certDer, privateKey: admin.privateKey },
      fetch: ((input, init) => fetch(input, { ...init, client })) as typeof fetch,
    });
    await api.put(
      Bot.parse({ kind: "bot", version: "v1", metadata: { name: "b" }, spec: { roles: [] } }),
      "create",
    );
    const { item } = await api.put(
      Token.parse({
        kind: "token",
        version: "v2",
        metadata: { name: "b" },
        spec: { roles: ["Bot"], bot_name: "b", join_method: "bound_keypair", bound_keypair: {} },
      }),
      "create",
    );
    return { pin: auth.caPin, secret: (item as Token).status!.bound_keypair!.registration_secret! };
  } finally {
    client.close();
    await auth.stop();
  }
}

Deno.test("first contact: a tbot daemon started before the auth service waits for it, then joins", async () => {
  const dir = await Deno.makeTempDir({ prefix: "first-contact-" });
  const dataDir = `${dir}/data`;
  const { pin, secret } = await provision(dataDir);
  const port = freePort();
  const args = (storage: string, ...extra: string[]) => [
    "start",
    "--auth-server",
    `127.0.0.1:${port}`,
    "--token",
    "b",
    "--join-method",
    "bound_keypair",
    "--storage",
    `${dir}/${storage}`,
    ...extra,
  ];
  let auth: Awaited<ReturnType<typeof spawnAuthService>> | undefined;
  const tbot = spawnTbot([...args("bot", "--ca-pin", pin)], { TBOT_REGISTRATION_SECRET: secret });
  try {
    // Nothing listens yet: one line per attempt, naming the cause; the daemon stays up.
    await waitUntil(() => retryLines(tbot.log()).length >= 2, "two retry lines", {
      timeoutMs: 60_000,
    }).catch(() => {
      throw new Error(`no retries logged:\n${tbot.log()}`);
    });
    const retries = retryLines(tbot.log());
    assertStringIncludes(
      retries[0],
      `connection refused: nothing is listening at 127.0.0.1:${port}`,
    );
    assertStringIncludes(retries[0], "attempt=1");
    assertStringIncludes(retries[1], "attempt=2");

    // The auth service comes up on that port: the daemon learns the CA by its pin and joins.
    auth = await spawnAuthService({
      dataDir,
      args: ["--cluster-name", "first.example"],
      listen: `127.0.0.1:${port}`,
    });
    await tbot.waitForLog(/joined the cluster/);
    assert((await Deno.stat(`${dir}/bot/host_ca.pem`)).isFile, "the pinned CA is kept");
    tbot.kill("SIGTERM");
    assertEquals(await tbot.exited(), 0, tbot.log());

    // A server that fails the pin is refused at once, without a retry: it may be an impostor.
    const wrong = "sha256:" + "0".repeat(64);
    const refused = spawnTbot([...args("wrong", "--ca-pin", wrong)], {
      TBOT_REGISTRATION_SECRET: secret,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stopped = await Promise.race([
      refused.exited(),
      new Promise<"running">((r) => timer = setTimeout(() => r("running"), 30_000)),
    ]);
    clearTimeout(timer);
    if (stopped === "running") {
      refused.kill("SIGKILL");
      await refused.exited();
    }
    assertEquals(stopped, 1, refused.log());
    assertStringIncludes(refused.log(), "matches none of onboarding.ca_pins");
    assertEquals(retryLines(refused.log()), []);

    // Oneshot fails fast when nothing listens.
    await auth.stop();
    auth = undefined;
    const oneshot = await runTbot([...args("oneshot", "--ca-pin", pin, "--oneshot")], {
      TBOT_REGISTRATION_SECRET: secret,
    });
    assertEquals(oneshot.code, 1, oneshot.stderr);
    assertStringIncludes(oneshot.stderr, "connection refused");
    assertEquals(retryLines(oneshot.stderr), []);
  } finally {
    try {
      tbot.kill("SIGKILL");
    } catch { /* exited */ }
    await tbot.exited();
    await auth?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
