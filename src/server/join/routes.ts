/**
 * Routes of the bound-keypair join endpoints (docs/protocol.md §4). The body
 * is read once as bytes: the signed-request check hashes exactly what was
 * received, and the same bytes are parsed as JSON.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { z } from "zod";
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
import { beginJoin, continueJoin, type JoinRequestContext } from "./service.ts";

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

/**
 * Reads the body, verifies an `Authorization` header if present (401 if it
 * fails). `continue` leaves the lock check to the join service, which lists
 * locks once for the identity and the token.
 */
async function readRequest<S extends z.ZodType>(
  ctx: ServerContext,
  c: Context<AppEnv>,
  schema: S,
  callerChecksLocks: boolean,
): Promise<{ body: z.infer<S>; rc: JoinRequestContext }> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  const body = parseBody(c, bytes, schema);
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
  return { body, rc: { identity, ...(remoteAddr ? { remoteAddr } : {}) } };
}

/** Builds the router; mounted under `/v1` by the app. */
export function joinRoutes(ctx: ServerContext): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.post("/join/bound-keypair/begin", async (c) => {
    const { body, rc } = await readRequest(ctx, c, BeginRequest, false);
    return c.json(await beginJoin(ctx, body, rc));
  });
  r.post("/join/bound-keypair/continue", async (c) => {
    const { body, rc } = await readRequest(ctx, c, ContinueRequest, true);
    return c.json(await continueJoin(ctx, body, rc));
  });
  r.post("/join/bound-keypair/resume", async (c) => {
    const { body, rc } = await readRequest(ctx, c, ResumeRequest, false);
    return c.json(await resumeJoin(ctx, body, rc));
  });
  return r;
}
