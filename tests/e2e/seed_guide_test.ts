/**
 * The seed guide ("Deploying Machine ID with Bound Keypair Joining") as an
 * acceptance test: a real auth service, and the guide's own commands typed as
 * the guide types them (through the `bin/` wrappers, from the user's working
 * directory), with only the address changed. The tbot config is the guide's
 * file verbatim apart from the address, the secret and the storage path; the
 * bot trusts the cluster's host CA the way a host trusts any CA it was given
 * (here `DENO_CERT`), so the file needs no Keybound-specific field.
 */
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { SEED_BOT_YAML, SEED_TOKEN_YAML } from "../_seed_guide.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { ignoreWithout } from "../_tools.ts";

/** A test that runs jq: ignored, saying why, outside CI without it. */
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, { ignore: ignoreWithout("seed guide's jq pipeline", "jq") }, fn);

const ROOT = new URL("../..", import.meta.url).pathname;
const DENO_DIR = Deno.execPath().replace(/\/[^/]+$/, "");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(script: string, cwd: string, env: Record<string, string>): Promise<Run> {
  const out = await new Deno.Command("bash", {
    args: ["-c", script],
    cwd,
    env: { ...env, PATH: `${ROOT}bin:${DENO_DIR}:${Deno.env.get("PATH")}`, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

test("seed guide: tctl steps and tbot join verbatim, then a refresh that consumes no recovery", async () => {
  const home = await Deno.makeTempDir({ prefix: "kb-seed-" });
  const dataDir = `${home}/auth`;
  // Started the way the README shows: the `bin/keybound-auth` wrapper on PATH.
  const auth = await spawnAuthService({
    dataDir,
    command: ["bash", "-c", 'exec keybound-auth "$@"', "keybound-auth"],
    args: ["--cluster-name", "seed.example.com"],
    env: { PATH: `${ROOT}bin:${DENO_DIR}:${Deno.env.get("PATH")}`, NO_COLOR: "1" },
  });
  try {
    // Step 2/5 and 3/5 happen "on your local machine": the admin's shell.
    const admin = {
      TELEPORT_AUTH_SERVER: auth.addr,
      TELEPORT_IDENTITY_FILE: `${dataDir}/admin-identity`,
    };
    const status = await sh("tctl status", home, admin);
    assertEquals(status.code, 0, status.stderr);
    assertMatch(status.stdout, /Cluster\s+seed\.example\.com/);
    assert(status.stdout.includes(`CA pin ${auth.caPin}`) || status.stdout.includes(auth.caPin));

    await Deno.writeTextFile(`${home}/bot.yaml`, SEED_BOT_YAML);
    const createBot = await sh("tctl create bot.yaml", home, admin);
    assertEquals(createBot.code, 0, createBot.stderr);

    await Deno.writeTextFile(`${home}/token-example.yaml`, SEED_TOKEN_YAML);
    const createToken = await sh("tctl create -f token-example.yaml", home, admin);
    assertEquals(createToken.code, 0, createToken.stderr);

    const secretRun = await sh(
      "tctl get token/example --format=json | jq -r '.[0].status.bound_keypair.registration_secret'",
      home,
      admin,
    );
    assertEquals(secretRun.code, 0, secretRun.stderr);
    const secret = secretRun.stdout.trim();
    assertMatch(secret, /^[0-9a-f]{32}$/);

    // Step 4/5 on the bot host: the guide's tbot.yaml, with oneshot as its
    // one-shot section says, and the address changed.
    const hostCa = `${home}/host-ca.pem`;
    const ca = await fetchHostCa(dataDir);
    await Deno.writeTextFile(hostCa, ca);
    const storage = `${home}/var/lib/teleport/bot`;
    await Deno.writeTextFile(
      `${home}/tbot.yaml`,
      `version: v2
oneshot: true
proxy_server: ${auth.addr}
onboarding:
  join_method: bound_keypair
  token: example
  bound_keypair:
    registration_secret: ${secret}
storage:
  type: directory
  path: ${storage}
# outputs will be filled in during the completion of an access guide.
outputs: []
`,
    );
    const botHost = { DENO_CERT: hostCa, TELEPORT_ANONYMOUS_TELEMETRY: "1" };
    const first = await sh("tbot start -c tbot.yaml", home, botHost);
    assertEquals(first.code, 0, first.stderr + first.stdout);
    assert(!(first.stdout + first.stderr).includes(secret), "the secret must never be logged");
    for (
      const f of ["id_bkp", "id_bkp.pub", "bkp_state", "bkp_key_history.json", "tlscert", "key"]
    ) {
      const st = await Deno.stat(`${storage}/${f}`);
      assertEquals(st.mode! & 0o777, 0o600, f);
    }
    assertEquals((await Deno.stat(storage)).mode! & 0o777, 0o700);

    const token1 =
      JSON.parse((await sh("tctl get token/example --format=json", home, admin)).stdout)[0];
    const st1 = token1.status.bound_keypair;
    assertEquals(st1.recovery_count, 1);
    assertEquals(st1.registration_secret ?? "", "", "the secret is single-use");
    const boundPub = (await Deno.readTextFile(`${storage}/id_bkp.pub`)).trim();
    assertEquals(st1.bound_public_key, boundPub);

    const second = await sh("tbot start -c tbot.yaml", home, botHost);
    assertEquals(second.code, 0, second.stderr + second.stdout);
    const st2 =
      JSON.parse((await sh("tctl get token/example --format=json", home, admin)).stdout)[0]
        .status.bound_keypair;
    assertEquals(st2.recovery_count, 1, "a refresh consumes no recovery");
    assertEquals(st2.bound_bot_instance_id, st1.bound_bot_instance_id);

    const instances = await sh("tctl bots instances ls", home, admin);
    assertEquals(instances.code, 0, instances.stderr);
    assert(instances.stdout.includes(`example/${st1.bound_bot_instance_id}`), instances.stdout);
  } finally {
    assertEquals(await auth.stop(), 0);
    await Deno.remove(home, { recursive: true });
  }
});

/** The host CA, as the admin would hand it to the bot host (`GET /v1/ca/host` is public). */
async function fetchHostCa(dataDir: string): Promise<string> {
  const id = await parseIdentityFile(await Deno.readTextFile(`${dataDir}/admin-identity`));
  return id.hostCaPems.join("");
}
