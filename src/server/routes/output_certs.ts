/**
 * `POST /v1/bot/identity-cert` (docs/protocol.md §8.7): certificates for a
 * tbot `identity` output that sets its own `credential_ttl`. They come from
 * the user CA with the bot's user, roles and SSH principals, but carry the
 * `output` usage attribute instead of an instance id and generation, so the
 * server never accepts them as the bot's identity.
 *
 * @module
 */
import { Hono } from "hono";
import { NotFoundError } from "../../errors.ts";
import {
  IDENTITY_CERT_PATH,
  IdentityCertRequest,
  type IdentityCertResponse,
} from "../../protocol/output_cert_messages.ts";
import { botUserName, OUTPUT_CERT_USAGE, outputSubject } from "../../protocol/subject.ts";
import { emitAudit } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { readJson } from "../http.ts";
import {
  botCertificateRoles,
  certificateTtlSeconds,
  findBot,
  issueUserCertificates,
} from "../join/certs.ts";
import { parseSubjectKey } from "../join/subject_key.ts";
import { requireBot } from "../request_auth.ts";
import { refreshCas } from "../rotation/cache.ts";
import type { VerifiedBot } from "../workload/issue.ts";

/** Builds the router; mounted at `/` by the app. */
export function outputCertRoutes(ctx: ServerContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post(IDENTITY_CERT_PATH, requireBot(ctx), async (c) => {
    // requireBot guarantees the bot name and instance id.
    const id = c.get("identity") as VerifiedBot;
    const body = await readJson(c, IdentityCertRequest);
    const key = await parseSubjectKey(body.public_tls_key, body.public_ssh_key);
    const bot = await findBot(ctx, id.botName);
    if (!bot) throw new NotFoundError(`bot "${id.botName}" does not exist`);
    // Signing outside a join: read the CA state afresh so no stale key signs.
    await refreshCas(ctx, 0);
    const issued = await issueUserCertificates(ctx, {
      bot,
      subject: outputSubject({
        botName: id.botName,
        ...(id.joinToken === undefined ? {} : { joinToken: id.joinToken }),
        roles: botCertificateRoles(bot),
      }),
      tlsPublicKey: key.key,
      tlsPublicKeySpki: key.spki,
      sshPublicKey: key.key,
      ttlSeconds: certificateTtlSeconds(bot, body.ttl_seconds),
    });
    const remoteAddr = c.env?.remoteAddr;
    await emitAudit(ctx, {
      type: "cert.create",
      status: { success: true },
      ...(remoteAddr ? { connection: { remote_addr: remoteAddr } } : {}),
      cert_type: "identity",
      usage: OUTPUT_CERT_USAGE,
      identity: botUserName(id.botName),
      bot_name: id.botName,
      bot_instance_id: id.botInstanceId,
      expires: issued.expires.toISOString(),
    });
    // Field by field from the wire schema: a field added to the internal result (a serial,
    // a key) never reaches the answer unless the schema gains it too.
    const answer: IdentityCertResponse = {
      certificates: {
        tls_cert: issued.tls_cert,
        tls_ca_certs: issued.tls_ca_certs,
        ssh_cert: issued.ssh_cert,
        ssh_ca_keys: issued.ssh_ca_keys,
      },
      expires: issued.expires.toISOString(),
    };
    return c.json(answer);
  });

  return app;
}
