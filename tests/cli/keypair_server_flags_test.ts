/**
 * `tbot keypair create` names the auth service as `tbot start` does:
 * `--auth-server`, `--proxy-server`, or the address of a joining URI
 * (`--join-uri`, `TBOT_JOIN_URI`, a file), and takes `--ca-pin` as it does,
 * with the same checks and the same messages. Real tbot processes and a real auth service over HTTPS, trusted
 * by its CA pin.
 */
import { assert, assertEquals } from "../_assert.ts";
import { newCluster } from "../agent/_cluster.ts";
import { runTbot } from "../tbot/_harness.ts";

const WARNING = "could not ping";

Deno.test("keypair create: --auth-server and --join-uri name the server, checked as tbot start checks them", async () => {
  const cluster = await newCluster();
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix: "cli-keypair-server-" });
  try {
    const create = (name: string, extra: string[], env: Record<string, string> = {}) =>
      runTbot(["keypair", "create", "--storage", `${dir}/${name}`, ...extra], env);
    const pinned = ["--ca-pin", cluster.pin];
    const uri = `tbot+auth+bound-keypair://tok@${served.address}`;
    await Deno.writeTextFile(`${dir}/uri.txt`, uri + "\n");
    for (
      const [name, extra, env] of [
        ["auth-server", ["--auth-server", served.address], {}],
        ["join-uri", ["--join-uri", uri], {}],
        ["join-uri-file", ["--join-uri", `${dir}/uri.txt`], {}],
        ["join-uri-env", [], { TBOT_JOIN_URI: uri }],
        ["auth-env", [], { TELEPORT_AUTH_SERVER: served.address }],
      ] as const
    ) {
      const r = await create(name, [...extra, ...pinned], env);
      assertEquals(r.code, 0, `${name}: ${r.stderr}`);
      // Reached, verified by the pin, and the learned CA kept in storage.
      assert(!r.stderr.includes(WARNING), `${name}: ${r.stderr}`);
      assert((await Deno.stat(`${dir}/${name}/host_ca.pem`)).isFile, name);
    }

    // Mistakes: exit 2 and the very line tbot start prints for the same flags.
    const start = (extra: string[]) =>
      runTbot(["start", "--token", "t", "--storage", "memory://", "--oneshot", ...extra]);
    for (
      const extra of [
        ["--auth-server", "ftp://x"],
        ["--proxy-server", "a b"],
        ["--join-uri", "tbot+proxy+bound-keypair://t@h"],
        [],
        ["--auth-server", served.address, "--ca-pin", "sha256:xyz"],
        ["--auth-server", served.address, "--ca-pin", cluster.pin, "--insecure"],
      ]
    ) {
      const k = await create("bad", extra);
      const s = await start(extra);
      assertEquals(k.code, 2, k.stderr);
      assertEquals(s.code, 2, s.stderr);
      assertEquals(k.stderr.split("\n")[0], s.stderr.split("\n")[0], extra.join(" "));
    }
  } finally {
    await served.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
