/**
 * tctl's runtime-agnostic command logic. The runtime adapter calls
 * {@linkcode runTctl} with the argument parser and a {@linkcode TctlContext}
 * factory (the connection is resolved from the parsed flags).
 *
 * @module
 */
export { COMMANDS, describeError, runTctl, TCTL } from "./run.ts";
export { type CommandSpec, UsageError } from "./command.ts";
export type { TctlContext } from "./context.ts";
export {
  authServerUrl,
  type ConnectionEnvironment,
  type ConnectionSettings,
  DEFAULT_AUTH_PORT,
  resolveConnection,
} from "./connection.ts";
export { type FlagName, TCTL_FLAGS, type TctlFlags } from "./options.ts";
