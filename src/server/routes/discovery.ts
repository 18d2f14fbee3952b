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

function caCerts(ca: CertAuthority): CaResponse {
  return {
    tls_ca_certs: ca.tls ? [ca.tls.certPem] : [],
    ssh_ca_keys: ca.ssh ? [ca.ssh.publicKey] : [],
  };
}

/** Builds `/ping`, `/ca/:type` and `/status`; mounted under `/v1` by the app. */
export function discoveryRoutes(ctx: ServerContext): Hono<AppEnv> {
  // CAs do not change while the process runs, so the pins are computed once.
  const pins = Promise.all([caPin(ctx.cas.host), caPin(ctx.cas.user)]);
  const app = new Hono<AppEnv>();

  app.get("/ping", async (c) =>
    c.json(
      {
        cluster_name: ctx.clusterName,
        server_version: ctx.version,
        protocol_version: PROTOCOL_VERSION,
        signature_algorithm_suite: SIGNATURE_ALGORITHM_SUITE,
        join_methods: ["bound_keypair"],
        ca_pin: (await pins)[0],
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
    const [host, user] = await pins;
    return c.json(
      {
        cluster_name: ctx.clusterName,
        server_version: ctx.version,
        ca_pin: host,
        ca_pins: { host, user },
      } satisfies ClusterStatus,
    );
  });

  return app;
}
