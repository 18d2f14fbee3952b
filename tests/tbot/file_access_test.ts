/**
 * The paths `tbot start` checks before it starts (src/cli/tbot/file_access.ts):
 * every field that names a file, and the first refusal's wording and details.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { configFromObject } from "../../src/agent/config/validate.ts";
import { checkFileAccess, pathsOf } from "../../src/cli/tbot/file_access.ts";
import { ConfigError } from "../../src/errors.ts";

const config = (o: Record<string, unknown>) =>
  configFromObject({
    version: "v2",
    auth_server: "auth.example.com:443",
    onboarding: { join_method: "bound_keypair", token: "bot" },
    ...o,
  }, (p) => p.join("."));

Deno.test("pathsOf names every file tbot start reads or writes, with its field", () => {
  const c = config({
    onboarding: {
      join_method: "bound_keypair",
      token: "/etc/tbot/token",
      ca_path: "/etc/tbot/ca.pem",
      bound_keypair: {
        registration_secret_path: "/etc/tbot/secret",
        static_private_key_path: "/etc/tbot/key.pem",
      },
    },
    storage: { type: "deno_kv", path: "/var/lib/tbot/bot.kv", kek_path: "/etc/tbot/kek" },
    outputs: [{ type: "identity", destination: { type: "directory", path: "/srv/a" } }],
    services: [{
      type: "identity",
      destination: { type: "directory", path: "/srv/b" },
      on_renew: { signal: "HUP", pid_file: "/run/nginx.pid" },
    }],
  });
  assertEquals(pathsOf(c, "tbot.pid", () => undefined), [
    {
      path: "/var/lib/tbot",
      access: "read_write",
      field: "storage.path",
      file: "/var/lib/tbot/bot.kv",
    },
    { path: "/etc/tbot/kek", access: "read", field: "storage.kek_path" },
    { path: "/etc/tbot/token", access: "read", field: "onboarding.token" },
    {
      path: "/etc/tbot/secret",
      access: "read",
      field: "onboarding.bound_keypair.registration_secret_path",
    },
    {
      path: "/etc/tbot/key.pem",
      access: "read",
      field: "onboarding.bound_keypair.static_private_key_path",
    },
    { path: "/etc/tbot/ca.pem", access: "read", field: "onboarding.ca_path" },
    { path: "/srv/a", access: "read_write", field: "services[0].destination.path" },
    { path: "/srv/b", access: "read_write", field: "services[1].destination.path" },
    { path: "/run/nginx.pid", access: "read", field: "services[1].on_renew.pid_file" },
    { path: ".", access: "read_write", field: "--pid-file", file: "tbot.pid" },
  ]);
  // The KEK file from the environment, when the configuration names none; memory: nothing.
  const env = (name: string) => name === "TBOT_STORAGE_KEK_PATH" ? "/run/kek" : undefined;
  assertEquals(pathsOf(config({ storage: { type: "directory", path: "d" } }), "/tbot.pid", env), [
    { path: "d", access: "read_write", field: "storage.path" },
    { path: "/run/kek", access: "read", field: "TBOT_STORAGE_KEK_PATH" },
    { path: "/", access: "read_write", field: "--pid-file", file: "/tbot.pid" },
  ]);
  assertEquals(pathsOf(config({ storage: { type: "memory" } }), undefined, env), []);
});

Deno.test("checkFileAccess: the first path refused is a CONFIG_INVALID naming its field", () => {
  const asked: string[] = [];
  const platform = {
    missingFileAccess: (path: string, access: "read" | "write") => {
      asked.push(`${access} ${path}`);
      return path === "/run" && access === "write" ? "tbot may not write /run: …" : undefined;
    },
  };
  const err = assertThrows(
    () =>
      checkFileAccess([
        { path: "/srv", access: "read_write", field: "services[0].destination.path" },
        { path: "/run", access: "read_write", field: "--pid-file", file: "/run/tbot.pid" },
        { path: "/etc/ca.pem", access: "read", field: "onboarding.ca_path" },
      ], platform),
    ConfigError,
  );
  assertEquals(
    err.message,
    "--pid-file /run/tbot.pid (written through its directory): tbot may not write /run: …",
  );
  assertEquals(err.details, { file_not_allowed: "/run", field: "--pid-file", permission: "write" });
  assertEquals(asked, ["read /srv", "write /srv", "read /run", "write /run"]);
  // No runtime check (a runtime that cannot refuse a file): nothing to refuse.
  checkFileAccess([{ path: "/x", access: "read", field: "f" }], {});
});
