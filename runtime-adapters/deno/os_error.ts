/**
 * One line for a failed file operation: what was being done, on which path,
 * and why, without Deno's "(os error N): open '<temp name>'" tail.
 *
 * @module
 */
/** Why a file operation failed, in a few words. */
export function osErrorReason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotCapable) {
    return "Deno's permissions do not allow it (run with --allow-read and --allow-write)";
  }
  const message = err instanceof Error ? err.message : String(err);
  const reason = message.replace(/\s*\(os error \d+\).*$/s, "");
  return reason.charAt(0).toLowerCase() + reason.slice(1);
}

/**
 * `cannot <what> <path>: <reason>`.
 *
 * @example
 * ```ts ignore
 * throw new ConfigError(fileErrorMessage("read", "/etc/tbot.yaml", err), { cause: err });
 * ```
 */
export function fileErrorMessage(what: string, path: string, err: unknown): string {
  return `cannot ${what} ${path}: ${osErrorReason(err)}`;
}
