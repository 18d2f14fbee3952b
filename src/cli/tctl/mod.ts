/**
 * tctl's runtime-agnostic command logic. The runtime adapter parses the
 * command line (with {@linkcode TCTL_OPTIONS}), resolves the connection, and
 * calls {@linkcode runTctl} with a {@linkcode TctlContext}.
 *
 * @module
 */
export { COMMANDS, describeError, resolveCommand, runTctl, usage } from "./run.ts";
export { type CommandSpec, UsageError } from "./command.ts";
export type { TctlContext } from "./context.ts";
export {
  ADMIN_IDENTITY_FILE,
  AUTH_SERVER_FILE,
  authServerUrl,
  type ConnectionEnvironment,
  type ConnectionSettings,
  DEFAULT_AUTH_PORT,
  resolveConnection,
} from "./connection.ts";
export { type FlagName, type FlagSpec, TCTL_OPTIONS, type TctlFlags } from "./options.ts";
