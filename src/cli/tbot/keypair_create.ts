/**
 * `tbot keypair create`: makes a bound keypair before the first join, so an
 * admin can preregister its public key (`onboarding.initial_public_key`)
 * instead of sharing a registration secret. Prints the public key and an
 * example token. `--static` makes a key that is never stored by tbot (for
 * immutable hosts; the token then needs `recovery.mode: insecure`).
 *
 * @module
 */
import { createStoredKeypair, StoredClientState } from "../../agent/client_state.ts";
import { parseServerAddress } from "../../agent/config/schema.ts";
import { MemoryStorage } from "../../agent/memory_storage.ts";
import type { AgentStorage } from "../../agent/storage.ts";
import { generateStorableKeyPair, importPkcs8Pem } from "../../crypto/keys.ts";
import { toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { errorMessage, isKeyboundError, KeyboundError } from "../../errors.ts";
import { UsageError } from "../flags/mod.ts";
import { SIGNATURE_ALGORITHM_SUITE } from "../../protocol/messages.ts";
import { PING_PATH, PingResponse } from "../../protocol/discovery.ts";
import { callApi } from "../../protocol/http_client.ts";
import { toBase64, utf8 } from "../../util/encoding.ts";
import type { Logger } from "../../util/log.ts";
import type { TbotFlags } from "./flags.ts";
import type { TbotPlatform, TrustSettings } from "./platform.ts";
import { checkFileAccess, writtenFile } from "./file_access.ts";
import { trustFor } from "./trust_settings.ts";
import { flagsFromSources } from "./output_mode.ts";
import {
  caPinFlags,
  NO_SERVER_FLAG,
  parseStorageUri,
  serverFromFlags,
  withJoinUri,
} from "./start_flags.ts";

/** What a ping answer must say for this check; a server that omits the suite speaks ours. */
const PingSuite = PingResponse.pick({ signature_algorithm_suite: true }).partial();

/** The example token printed with the key. */
export function exampleToken(publicKey: string, isStatic: boolean): string {
  return [
    "kind: token",
    "version: v2",
    "metadata:",
    "  name: example",
    "spec:",
    "  roles: [Bot]",
    "  bot_name: example",
    "  join_method: bound_keypair",
    "  bound_keypair:",
    "    onboarding:",
    `      initial_public_key: "${publicKey}"`,
    "    recovery:",
    "      limit: 1",
    ...(isStatic ? ["      mode: insecure"] : []),
    "",
  ].join("\n");
}

/** Asks the server which algorithm suite it wants; warns and assumes balanced-v1 if unreachable. */
async function checkSuite(
  baseUrl: string,
  trust: TrustSettings,
  platform: TbotPlatform,
  log: Logger,
): Promise<void> {
  let suite: unknown;
  try {
    const { fetch: f } = await platform.createFetch(baseUrl, trust);
    ({ signature_algorithm_suite: suite } = await callApi({ baseUrl, fetch: f }, {
      method: "GET",
      path: PING_PATH,
      response: PingSuite,
    }));
  } catch (e) {
    const advice = isKeyboundError(e, "TLS_UNTRUSTED")
      ? " (pass --ca-pin with the pin `tctl status` prints, or --insecure)"
      : "";
    log.warn(
      `could not ping ${baseUrl}; assuming the ${SIGNATURE_ALGORITHM_SUITE} suite (Ed25519)`,
      { error: errorMessage(e) + advice },
    );
    return;
  }
  if (suite !== undefined && suite !== SIGNATURE_ALGORITHM_SUITE) {
    throw new KeyboundError(
      "NOT_IMPLEMENTED",
      `the server asks for the signature algorithm suite "${
        String(suite)
      }"; this tbot supports ${SIGNATURE_ALGORITHM_SUITE}`,
    );
  }
}

async function staticKey(
  f: TbotFlags,
  platform: TbotPlatform,
  log: Logger,
): Promise<{ publicKey: string; pem: string }> {
  if (f.staticKeyPath && !f.overwrite) {
    let existing: string | undefined;
    try {
      existing = await platform.readTextFile(f.staticKeyPath);
    } catch {
      existing = undefined;
    }
    if (existing) {
      const kp = await importPkcs8Pem(existing);
      log.info("a static key already exists; printing it (use --overwrite to replace it)", {
        path: f.staticKeyPath,
      });
      return { publicKey: await toAuthorizedKey(kp.publicKey), pem: existing };
    }
  }
  const generated = await generateStorableKeyPair("EdDSA");
  if (f.staticKeyPath) {
    await platform.writeTextFile(f.staticKeyPath, generated.pkcs8Pem, 0o600);
    log.info("static key written", { path: f.staticKeyPath });
  }
  return { publicKey: await toAuthorizedKey(generated.publicKey), pem: generated.pkcs8Pem };
}

/** Runs the command; returns the exit code. */
export async function runKeypairCreate(
  f: TbotFlags,
  platform: TbotPlatform,
  log: Logger,
): Promise<number> {
  const format = f.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format: must be "text" or "json", not "${format}"`);
  }
  // Asked first, before the server is contacted: outside a narrowed --allow-read or
  // --allow-write, Deno would prompt a terminal.
  if (f.static && f.staticKeyPath) {
    checkFileAccess([writtenFile(f.staticKeyPath, "--static-key-path")], platform);
  }
  // The address as `tbot start` reads it: either flag, the environment, or a joining URI.
  const server = serverFromFlags(withJoinUri(await flagsFromSources(f, platform, log)));
  if (!server) throw new UsageError(NO_SERVER_FLAG);
  const baseUrl = parseServerAddress(server).baseUrl;
  const pins = caPinFlags(f);
  const trust = (storage: AgentStorage) =>
    trustFor({ server, insecure: !!f.insecure, caPins: pins }, storage, log);

  let publicKey: string;
  let privateKeyB64: string | undefined;
  if (f.static) {
    // Nothing is stored for a static key: a CA learned through a pin is not kept either.
    await checkSuite(baseUrl, trust(new MemoryStorage()), platform, log);
    const k = await staticKey(f, platform, log);
    publicKey = k.publicKey;
    privateKeyB64 = toBase64(utf8(k.pem));
  } else {
    if (!f.storage) throw new UsageError("--storage is required (unless --static)");
    const dest = parseStorageUri(f.storage);
    if (dest.type !== "directory") {
      throw new UsageError("--storage: a bound keypair must be kept in a persistent directory");
    }
    checkFileAccess([{ path: dest.path, access: "read_write", field: "--storage" }], platform);
    const storage = platform.openDirectory(dest.path);
    await storage.init();
    const release = await storage.tryLock();
    try {
      // A CA learned through a pin is kept in the bot's storage, as `tbot start` keeps it.
      await checkSuite(baseUrl, trust(storage), platform, log);
      const existing = (await StoredClientState.load(storage, log)).activeKey;
      if (existing && !f.overwrite) {
        log.info(
          "a keypair already exists in storage; printing it (use --overwrite to replace it)",
        );
        publicKey = existing.authorizedKey;
      } else {
        if (existing) {
          log.warn("replacing the active keypair; the old key stays in the key history");
        }
        publicKey = await createStoredKeypair(storage, log);
        log.info("keypair has been written to storage", { storage: storage.describe() });
      }
    } finally {
      await release();
    }
  }

  if (format === "json") {
    platform.stdout(
      JSON.stringify(
        {
          public_key: publicKey,
          ...(privateKeyB64 ? { private_key: privateKeyB64 } : {}),
        },
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  const lines = [
    "To register this keypair, put its public key in the join token's",
    "spec.bound_keypair.onboarding.initial_public_key field:",
    "",
    publicKey,
    "",
  ];
  if (privateKeyB64) {
    lines.push(
      "This static key is not stored by tbot. Give it to tbot with",
      "onboarding.bound_keypair.static_private_key_path, or in the environment (keep it secret):",
      "",
      `TBOT_BOUND_KEYPAIR_STATIC_KEY=${privateKeyB64}`,
      "",
      "Static keys cannot send a join state, so the token needs recovery mode insecure.",
      "",
    );
  }
  lines.push(
    "Example token (create it with `tctl create -f token.yaml`):",
    "",
    exampleToken(publicKey, !!f.static),
  );
  platform.stdout(lines.join("\n"));
  return 0;
}
