/**
 * What tbot's debug log (`-d`, `debug: true`) traces besides the loops'
 * own lines: each exchange with the auth service (method, path, status,
 * duration — so every join step shows) and each storage operation (file
 * name and size).
 *
 * Only those: never a body, a header, a query string or a file's content,
 * so no key, registration secret, join state or signed-request token can
 * reach the log. Without debug the logger drops these lines.
 *
 * @module
 */
import type { Logger } from "../util/log.ts";
import type { AgentStorage, ReleaseLock } from "./storage.ts";

/**
 * `fetchFn` with one debug line per request: `http` with `method`, `path`,
 * `status` (or `error`) and `ms`.
 *
 * @example
 * ```ts
 * import { createLogger } from "../util/log.ts";
 * const traced = traceFetch(fetch, createLogger({ debug: true }));
 * ```
 */
export function traceFetch(fetchFn: typeof fetch, log: Logger): typeof fetch {
  return async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    const fields = { method, path: URL.parse(url)?.pathname ?? "?" };
    const started = Date.now();
    try {
      const response = await fetchFn(input, init);
      log.debug("http", { ...fields, status: response.status, ms: Date.now() - started });
      return response;
    } catch (err) {
      const error = err instanceof Error ? err.name : "error";
      log.debug("http", { ...fields, error, ms: Date.now() - started });
      throw err;
    }
  };
}

/** `storage` with one debug line per write, delete and lock: file names and sizes only. */
export function traceStorage(storage: AgentStorage, log: Logger): AgentStorage {
  const where = storage.describe();
  return {
    persistent: storage.persistent,
    describe: () => where,
    init: () => storage.init(),
    read: (name) => storage.read(name),
    list: () => storage.list(),
    async write(name, data) {
      await storage.write(name, data);
      const bytes = typeof data === "string" ? new TextEncoder().encode(data).length : data.length;
      log.debug("storage write", { file: name, bytes });
    },
    async delete(name) {
      await storage.delete(name);
      log.debug("storage delete", { file: name });
    },
    async tryLock(): Promise<ReleaseLock> {
      const release = await storage.tryLock();
      log.debug("storage locked", { storage: where });
      return release;
    },
  };
}
