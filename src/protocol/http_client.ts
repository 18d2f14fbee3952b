/**
 * The client half of every Keybound call: send with `fetch`, turn network
 * failures into `CONNECTION_FAILED`, keep server error codes
 * (`{"error":{"code","message"}}`), and validate answers against their wire
 * schema, so the join client, the bot API and the Worker bot fail alike.
 *
 * @module
 */
import type { z } from "zod";
import { errorFromWire, KeyboundError } from "../errors.ts";
import { formatZodError } from "../util/zod_error.ts";

/** Sends a request; a failure to reach the server becomes `CONNECTION_FAILED`. */
export async function sendRequest(
  fetchFn: typeof fetch,
  url: URL,
  init: RequestInit,
): Promise<Response> {
  try {
    return await fetchFn(url, init);
  } catch (cause) {
    throw new KeyboundError("CONNECTION_FAILED", `could not reach ${url.origin}`, { cause });
  }
}

/**
 * Reads a JSON answer. A non-2xx status becomes the server's own error (code
 * kept); a 2xx body that does not match `schema` is `CONNECTION_FAILED`
 * naming `what` and the first mismatching field.
 */
export async function readAnswer<S extends z.ZodType>(
  res: Response,
  schema: S,
  what: string,
): Promise<z.infer<S>> {
  const json: unknown = await res.json().catch(() => null);
  if (!res.ok) throw errorFromWire(res.status, json);
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `unexpected ${what} from the server: ${formatZodError(parsed.error)}`,
    );
  }
  return parsed.data;
}
