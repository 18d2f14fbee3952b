/**
 * `tbot install systemd`: renders a unit that runs `tbot start -c FILE`,
 * prints it (dry run, the default) or writes it with `--write`. An existing
 * unit with other content is replaced only with `--force`.
 *
 * @module
 */
import { parseConfig } from "../../agent/config/load.ts";
import { KeyboundError } from "../../errors.ts";
import { UsageError } from "../flags/mod.ts";
import type { Logger } from "../../util/log.ts";
import type { TbotFlags } from "./flags.ts";
import type { TbotPlatform } from "./platform.ts";
import { checkFileAccess, writtenFile } from "./file_access.ts";
import { ENV_CONFIG_PATH } from "./start.ts";
import { defaultPidFile, renderSystemdUnit } from "./systemd_unit.ts";

const NAME_RE = /^[A-Za-z0-9_.@-]{1,200}$/;
const ACCOUNT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** Runs the command; returns the exit code. */
export async function runInstallSystemd(
  f: TbotFlags,
  platform: TbotPlatform,
  log: Logger,
): Promise<number> {
  const config = f.config ?? platform.env(ENV_CONFIG_PATH);
  if (!config) throw new UsageError("-c/--config is required: the unit runs `tbot start -c FILE`");
  const name = f.name ?? "tbot";
  if (!NAME_RE.test(name)) throw new UsageError(`--name: "${name}" is not a valid unit name`);
  const user = f.user ?? "teleport";
  const group = f.group ?? "teleport";
  if (!ACCOUNT_RE.test(user)) throw new UsageError(`--user: "${user}" is not a valid user name`);
  if (!ACCOUNT_RE.test(group)) {
    throw new UsageError(`--group: "${group}" is not a valid group name`);
  }
  const configPath = platform.absolutePath(config);
  // Asked first: outside a narrowed --allow-read, Deno would prompt a terminal.
  checkFileAccess([
    { path: configPath, access: "read", field: f.config === undefined ? ENV_CONFIG_PATH : "-c" },
  ], platform);
  // A unit pointing at a broken config would only fail later, in a restart loop.
  parseConfig(await platform.readTextFile(configPath), configPath);

  const unit = renderSystemdUnit({
    name,
    user,
    group,
    command: platform.tbotCommand(),
    configPath,
    pidFile: platform.absolutePath(f.pidFile ?? defaultPidFile(name)),
    anonymousTelemetry: !!f.anonymousTelemetry,
  });
  const dir = platform.absolutePath(f.systemdDirectory ?? "/etc/systemd/system");
  const path = `${dir.replace(/\/+$/, "")}/${name}.service`;
  if (!f.write) {
    platform.stdout(
      `Dry-run mode is active. Use '--write' to enable writes.\n\nWould write ${path}:\n\n${unit}`,
    );
    return 0;
  }
  checkFileAccess([writtenFile(path, "--systemd-directory")], platform);
  let existing: string | null = null;
  try {
    existing = await platform.readTextFile(path);
  } catch {
    existing = null;
  }
  if (existing === unit) {
    log.info("the unit file is already up to date", { path });
    return 0;
  }
  if (existing !== null && !f.force) {
    throw new KeyboundError(
      "ALREADY_EXISTS",
      `${path} already exists with different content; use --force to replace it`,
    );
  }
  await platform.writeTextFile(path, unit, 0o644);
  log.info("wrote the systemd unit", { path });
  platform.stdout(
    `Wrote ${path}. Next:\n  systemctl daemon-reload\n  systemctl enable --now ${name}\n`,
  );
  return 0;
}
