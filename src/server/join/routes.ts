/**
 * Routes of the bound-keypair join endpoints (docs/protocol.md §4). The body
 * is read once as bytes: the signed-request check hashes exactly what was
 * received, and the same bytes are parsed as JSON.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type * as z from "zod";
import { KeyboundError } from "../../errors.ts";
import { BeginRequest, ContinueRequest } from "../../protocol/messages.ts";
import { ResumeRequest } from "../../protocol/join_resume.ts";
import { fromUtf8 } from "../../util/encoding.ts";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { parseJson } from "../http.ts";
import { verifySignedRequest } from "../request_auth.ts";
import { auditingFailures } from "./failures.ts";
import { resumeJoin } from "./resume.ts";
import { beginJoin } from "./begin.ts";
import { continueJoin, prepareContinue } from "./continue.ts";
import type { JoinRequestContext } from "./request_context.ts";

function parseBody<S extends z.ZodType>(
  c: Context<AppEnv>,
  body: Uint8Array,
  schema: S,
): z.infer<S> {
  const type = c.req.header("content-type");
  if (type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) {
    throw new KeyboundError("BAD_REQUEST", `content type must be application/json, got "${type}"`);
  }
  let text: string;
  try {
    text = fromUtf8(body);
  } catch {
    throw new KeyboundError("BAD_REQUEST", "request body is not valid JSON");
  }
  return parseJson(text, schema);
}

/** Reads and parses the body once, as bytes (the signature covers exactly these). */
async function readBody<S extends z.ZodType>(
  c: Context<AppEnv>,
  schema: S,
): Promise<{ bytes: Uint8Array; body: z.infer<S> }> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  return { bytes, body: parseBody(c, bytes, schema) };
}

/**
 * Verifies an `Authorization` header if present (401 if it fails).
 * `continue` leaves the lock check to the join service, which lists locks
 * once for the identity and the token.
 */
async function requestContext(
  ctx: ServerContext,
  c: Context<AppEnv>,
  { bytes, body }: { bytes: Uint8Array; body: unknown },
  callerChecksLocks: boolean,
): Promise<JoinRequestContext> {
  const remoteAddr = c.env?.remoteAddr;
  const named = body as { token_name?: unknown };
  const tokenName = typeof named.token_name === "string" ? named.token_name : "";
  // Join requests are not jti-recorded (docs/protocol.md §2 rule 5): `begin`
  // only starts a challenge and `continue` is bound to one by `chash`.
  const identity = await auditingFailures(
    ctx,
    { tokenName, remoteAddr },
    () =>
      verifySignedRequest(ctx, {
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        body: bytes,
        authorization: c.req.header("authorization") ?? null,
      }, { recordJti: false, callerChecksLocks }),
  );
  return { identity, ...(remoteAddr ? { remoteAddr } : {}) };
}

/** Builds the router; mounted under `/v1` by the app. */
export function joinRoutes(ctx: ServerContext): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.post("/join/bound-keypair/begin", async (c) => {
    const read = await readBody(c, BeginRequest);
    return c.json(await beginJoin(ctx, read.body, await requestContext(ctx, c, read, false)));
  });
  r.post("/join/bound-keypair/continue", async (c) => {
    const read = await readBody(c, ContinueRequest);
    // The session opens, and the work that depends only on it starts, while
    // the signature is checked: each waits on another thread or on storage.
    // Their outcomes are looked at only after the signature's (continueJoin).
    const prepared = prepareContinue(ctx, read.body);
    const rc = await requestContext(ctx, c, read, true);
    return c.json(await continueJoin(ctx, read.body, rc, prepared));
  });
  r.post("/join/bound-keypair/resume", async (c) => {
    const read = await readBody(c, ResumeRequest);
    return c.json(await resumeJoin(ctx, read.body, await requestContext(ctx, c, read, false)));
  });
  return r;
}
