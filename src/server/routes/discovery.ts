/**
 * Discovery routes (docs/protocol.md §3) and the admin status call (§5).
 *
 * @module
 */
import { Hono } from "hono";
import { KeyboundError } from "../../errors.ts";
import { caPin } from "../bootstrap.ts";
import type { CertAuthority, ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { requireAdmin } from "../request_auth.ts";
import {
  type CaResponse,
  type ClusterStatus,
  type PingResponse,
  PROTOCOL_VERSION,
} from "../../protocol/discovery.ts";
import { SIGNATURE_ALGORITHM_SUITE } from "../../protocol/messages.ts";
import { caKeysOf } from "../join/certs.ts";
import { CA_SET_FIELD, refreshCas } from "../rotation/cache.ts";
import { CA_TYPES } from "../rotation/schema.ts";
import { caStatus } from "../rotation/status.ts";

/** Every trusted key, the signing key first; for the host CA the live cross-signed certificates. */
function caCerts(ca: CertAuthority): CaResponse {
  return {
    ...caKeysOf(ca),
    ...(ca.type === "host" && ca.crossSigned.length > 0 ? { cross_signed: ca.crossSigned } : {}),
  };
}

// Pins change only with the CA snapshot; computed once per snapshot.
const pinsOf = new WeakMap<CertAuthority, Promise<string>>();
function pin(ca: CertAuthority): Promise<string> {
  let p = pinsOf.get(ca);
  if (!p) {
    p = caPin(ca);
    pinsOf.set(ca, p);
  }
  return p;
}

/** Builds `/ping`, `/ca/:type` and `/status`; mounted under `/v1` by the app. */
export function discoveryRoutes(ctx: ServerContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/ping", async (c) =>
    c.json(
      {
        cluster_name: ctx.clusterName,
        server_version: ctx.version,
        protocol_version: PROTOCOL_VERSION,
        signature_algorithm_suite: SIGNATURE_ALGORITHM_SUITE,
        join_methods: ["bound_keypair"],
        ca_pin: await pin(ctx.cas.host),
      } satisfies PingResponse,
    ));

  app.get("/ca/:type", (c) => {
    const type = c.req.param("type");
    if (type !== "host" && type !== "user") {
      throw new KeyboundError("BAD_REQUEST", `unknown CA type "${type}" (expected host or user)`);
    }
    return c.json(caCerts(ctx.cas[type]));
  });

  app.get("/status", requireAdmin(ctx), async (c) => {
    await refreshCas(ctx, 0);
    const cas = ctx.cas;
    const [host, user] = await Promise.all([pin(cas.host), pin(cas.user)]);
    return c.json(
      {
        cluster_name: ctx.clusterName,
        server_version: ctx.version,
        ca_pin: host,
        ca_pins: { host, user },
        cas: await Promise.all(CA_TYPES.map((t) => caStatus(cas[CA_SET_FIELD[t]]))),
      } satisfies ClusterStatus,
    );
  });

  return app;
}
