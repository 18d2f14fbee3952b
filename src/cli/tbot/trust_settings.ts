/**
 * How tbot decides to trust the auth service, from the same settings
 * wherever they come from (`tbot start`'s config, `keypair create`'s flags):
 * plain HTTP to a loopback address, no verification, CA pins, a CA file, or
 * the system's roots.
 *
 * @module
 */
import { parseServerAddress } from "../../agent/config/schema.ts";
import type { AgentStorage } from "../../agent/storage.ts";
import type { Logger } from "../../util/log.ts";
import type { TrustSettings } from "./platform.ts";

/** What trust is built from. */
export interface TrustChoice {
  /** The auth service address (`host:port` or with a scheme). */
  server: string;
  /** `insecure`: no verification. */
  insecure: boolean;
  /** `onboarding.ca_pins` / `--ca-pin`. */
  caPins: string[];
  /** `onboarding.ca_path`. */
  caPath?: string;
}

/**
 * The trust settings of `choice`; `storage` keeps the host CAs learned through
 * a pin and moved by CA rotations (see src/agent/trust/).
 *
 * @example
 * ```ts ignore
 * trustFor({ server: "auth.example.com:443", insecure: false, caPins: [] }, storage); // {mode: "system"}
 * ```
 */
export function trustFor(
  choice: TrustChoice,
  storage: AgentStorage,
  log?: Logger,
): TrustSettings {
  if (parseServerAddress(choice.server).scheme === "http:") return { mode: "plain_http" };
  if (choice.insecure) return { mode: "insecure" };
  if (choice.caPins.length > 0) return { mode: "pins", pins: choice.caPins, storage, log };
  if (choice.caPath) return { mode: "ca_path", path: choice.caPath, storage, log };
  return { mode: "system", storage, log };
}
