/**
 * Builds the configured outputs.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import type { BotApi } from "../bot_api.ts";
import { type ServiceConfig, serviceName } from "../config/schema.ts";
import type { AgentStorage } from "../storage.ts";
import { IssuedIdentityOutput } from "./identity_cert_output.ts";
import { IdentityOutput } from "./identity_output.ts";
import { type HookDeps, HookedOutput } from "../hooks/mod.ts";
import { OutputSharing, SharedOutput, type SharingDeps } from "../sharing/mod.ts";
import type { Output } from "./output.ts";
import { SshConfigOutput } from "./ssh_config.ts";
import { SshHostOutput } from "./ssh_host.ts";
import { WorkloadIdentityJwtOutput } from "./workload_identity_jwt.ts";
import { WorkloadIdentityX509Output } from "./workload_identity_x509.ts";

export type { Output } from "./output.ts";

/** How a destination treats the files it writes. */
export interface DestinationOptions {
  /**
   * Runs on each new file (its temporary path) before it replaces the old
   * one, e.g. to share it with `readers`; a failure fails the write and
   * leaves the old file in place.
   */
  prepareFile?: (path: string) => Promise<void>;
}

/** Opens a destination of an output; directory destinations only for now. */
export type OpenDestination = (
  destination: { type: "directory"; path: string },
  options?: DestinationOptions,
) => AgentStorage;

/** What outputs that talk to the auth service need (all but a bare `identity` without a lifetime). */
export interface OutputDeps {
  /** The auth service. */
  api: BotApi;
  /** The bot's `credential_ttl`, used where an output sets none. */
  credentialTtlMs: number;
  /** Makes a destination path absolute (ssh_config names files by absolute path). */
  absolutePath(path: string): string;
  /** Runs `on_renew` hooks; an output that configures one needs it. */
  hooks?: Omit<HookDeps, "directory">;
  /** Shares files with `destination.readers`; an output that names readers needs it. */
  sharing?: Omit<SharingDeps, "directory">;
}

function needDeps(deps: OutputDeps | undefined, type: string): OutputDeps {
  if (!deps) {
    throw new KeyboundError("INTERNAL", `output type "${type}" needs the auth service API`);
  }
  return deps;
}

/** One {@linkcode Output} per configured service, in order. */
export function createOutputs(
  services: ServiceConfig[],
  open: OpenDestination,
  deps?: OutputDeps,
): Output[] {
  return services.map((s, i): Output => {
    if (!s.on_renew && !s.destination.readers) return createOutput(s, i, open, deps);
    const d = needDeps(deps, s.type);
    const directory = d.absolutePath(s.destination.path);
    let output: Output;
    if (s.destination.readers) {
      if (!d.sharing) throw new KeyboundError("INTERNAL", "readers needs file sharing");
      const sharing = new OutputSharing(serviceName(s, i), s.destination.readers, {
        ...d.sharing,
        directory,
      });
      const prepareFile = (path: string) => sharing.shareFile(path);
      output = new SharedOutput(
        createOutput(s, i, (dest) => open(dest, { prepareFile }), deps),
        sharing,
      );
    } else output = createOutput(s, i, open, deps);
    if (s.on_renew) {
      if (!d.hooks) throw new KeyboundError("INTERNAL", "on_renew needs a process runner");
      output = new HookedOutput(output, s.on_renew, { ...d.hooks, directory });
    }
    return output;
  });
}

function createOutput(
  s: ServiceConfig,
  i: number,
  open: OpenDestination,
  deps?: OutputDeps,
): Output {
  const name = serviceName(s, i);
  const destination = open(s.destination);
  if (s.type === "identity") {
    // With its own lifetime the output gets certificates of its own; else a copy of the bot's.
    const identity = s.credential_ttl === undefined
      ? new IdentityOutput(name, destination)
      : new IssuedIdentityOutput({
        name,
        destination,
        api: needDeps(deps, s.type).api,
        credentialTtlMs: s.credential_ttl,
        renewalIntervalMs: s.renewal_interval,
        configPath: `services[${i}].destination.path`,
      });
    if (s.ssh_config === "off" || !deps) return identity;
    return new SshConfigOutput({
      inner: identity,
      destination,
      directory: deps.absolutePath(s.destination.path),
      api: deps.api,
      configPath: `services[${i}].destination.path`,
    });
  }
  const d = needDeps(deps, s.type);
  const common = {
    name,
    destination,
    api: d.api,
    credentialTtlMs: s.credential_ttl ?? d.credentialTtlMs,
    renewalIntervalMs: s.renewal_interval,
    configPath: `services[${i}].destination.path`,
  };
  switch (s.type) {
    case "ssh_host":
      return new SshHostOutput(common, s.principals);
    case "workload-identity-x509":
      return new WorkloadIdentityX509Output(common, s.selector.name);
    case "workload-identity-jwt":
      return new WorkloadIdentityJwtOutput(common, s.selector.name, s.audiences);
  }
}
