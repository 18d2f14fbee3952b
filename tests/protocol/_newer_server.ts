/**
 * A newer auth service as an older client meets it (docs/protocol.md §1.7):
 * the real app behind a wrapper that adds a field the client does not know to
 * every object, at every depth, of the JSON answers it selects, as a later
 * version adding fields would.
 *
 * @module
 */
import type { FetchApp } from "../../runtime-adapters/deno/serve.ts";

/** The name of the field a newer server adds. */
export const FUTURE = "future_field_of_a_newer_server";

/** `value` with `FUTURE` added to every object in it, at every depth. */
export function withFutureFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withFutureFields);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = { [FUTURE]: { added: "later" } };
  for (const [k, v] of Object.entries(value)) out[k] = withFutureFields(v);
  return out;
}

/**
 * Serves `app`, adding future fields to its successful JSON answers to the
 * paths `answers` selects; counts them in `changed`.
 */
export function newerServer(
  app: FetchApp,
  answers: (path: string) => boolean,
): FetchApp & { changed: number } {
  const newer = {
    changed: 0,
    async fetch(request: Request, env: { remoteAddr?: string }): Promise<Response> {
      const res = await app.fetch(request, env);
      if (!res.ok || !answers(new URL(request.url).pathname)) return res;
      const body = withFutureFields(await res.json());
      newer.changed++;
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    },
  };
  return newer;
}
