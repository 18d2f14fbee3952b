/**
 * The `tbot.yaml` schema (version v2), strict like Teleport's decoder: an
 * unknown key is an error. Only what Keybound implements is accepted, so a
 * field that would be silently ignored fails loudly instead.
 *
 * @module
 */
import * as z from "zod";
import { parseDuration } from "../../util/duration.ts";
import { isHostPort, isLoopbackHost, parseServerAddress } from "../../util/host_port.ts";

// The address parser lives in util (tctl and the auth service use it too).
export { parseServerAddress, type ServerAddressParts } from "../../util/host_port.ts";
import { HostPrincipal } from "../../protocol/workload_messages.ts";
import { JOIN_URI_SHAPE, parseJoinUri } from "./join_uri.ts";

/** Teleport's default bot certificate lifetime. */
export const DEFAULT_CREDENTIAL_TTL = "1h";
/** Teleport's default renewal interval. */
export const DEFAULT_RENEWAL_INTERVAL = "20m";
/** Teleport's documented default storage directory. */
export const DEFAULT_STORAGE_PATH = "/var/lib/teleport/bot";

/** A Go duration, parsed to milliseconds; must be positive. */
export const DurationMs = z.string({ error: "must be a duration such as 20m or 1h" }).transform(
  (s, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(s);
    } catch {
      ctx.addIssue({ code: "custom", message: `invalid duration "${s}" (examples: 90s, 20m, 1h)` });
      return z.NEVER;
    }
    if (ms <= 0) {
      ctx.addIssue({ code: "custom", message: "must be a positive duration" });
      return z.NEVER;
    }
    return ms;
  },
);

/** A server address: `host:port`, or with an explicit `https://` / `http://` scheme. */
export const ServerAddress = z.string().min(1).refine((s) => {
  try {
    parseServerAddress(s);
    return true;
  } catch {
    return false;
  }
}, { message: "must be host:port (optionally with https:// or http://)" });

/** A CA pin as `tctl status` prints it. */
export const CaPin = z.string().regex(/^sha256:[0-9a-fA-F]{64}$/, {
  message: "must be sha256: followed by 64 hex digits (as `tctl status` prints it)",
});

/** A user or group name as `setfacl` and `chgrp` take it (a name or a numeric id). */
const PrincipalName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/, {
  message: "must be a user or group name (letters, digits, _ . -; at most 32) or a numeric id",
});

/** One entry of `readers`: `{user: NAME}` or `{group: NAME}`. */
export const ReaderConfig = z.union([
  z.strictObject({ user: PrincipalName }),
  z.strictObject({ group: PrincipalName }),
], { error: "each reader must be {user: NAME} or {group: NAME}" });
/** One entry of `readers`, parsed. */
export type ReaderConfig = z.infer<typeof ReaderConfig>;

/** A `directory` destination. */
export const DirectoryDestination = z.strictObject({
  type: z.literal("directory"),
  path: z.string({ error: "required: the directory's path" }).min(1),
  /** Who besides tbot's user may read the files (output destinations only, never storage). */
  readers: z.array(ReaderConfig).min(1, "name at least one reader, or leave readers out")
    .optional(),
});

/** A `memory` destination (storage only). */
export const MemoryDestination = z.strictObject({ type: z.literal("memory") });

/** `storage.kek_path`: a file holding the key-encryption key that seals private keys at rest. */
const KekPath = z.string().min(1).optional();

/** `storage` in a directory, optionally sealed with a KEK. */
export const DirectoryStorageConfig = z.strictObject({
  type: z.literal("directory"),
  path: z.string({ error: "required: the directory's path" }).min(1),
  kek_path: KekPath,
});

/** `storage` in a Deno KV database file (Deno only, needs `--unstable-kv`). */
export const DenoKvStorageConfig = z.strictObject({
  type: z.literal("deno_kv"),
  path: z.string({ error: "required: the Deno KV database file" }).min(1),
  kek_path: KekPath,
});

/** `storage`: where the bot keeps its own state. */
export const StorageConfig = z.discriminatedUnion(
  "type",
  [DirectoryStorageConfig, DenoKvStorageConfig, MemoryDestination],
  {
    error: 'type must be "directory", "deno_kv" or "memory"',
  },
);
/** `storage`, parsed. */
export type StorageConfig = z.infer<typeof StorageConfig>;

/** Names usable in `/readyz/{name}` and logs. */
export const ServiceName = z.string().regex(/^[A-Za-z0-9_+-]{1,64}$/, {
  message: "may contain only letters, digits, -, _ and + (at most 64)",
});

/** A directory destination, the only kind the workload outputs write to. */
const DirectoryOnly = z.discriminatedUnion("type", [DirectoryDestination], {
  error: 'type must be "directory"',
});

/** Signals a reload hook may send (the ones daemons use for "reload" or "restart"). */
export const HOOK_SIGNALS = ["HUP", "USR1", "USR2", "TERM", "INT", "QUIT"] as const;

/** Default time a reload hook may take before it is killed. */
export const DEFAULT_HOOK_TIMEOUT = "10s";

/** `on_renew: {exec: [argv…], timeout}`: runs a program after each successful write. */
export const ExecHookConfig = z.strictObject({
  exec: z.array(z.string().min(1), { error: "must be a list: the program and its arguments" })
    .min(1, "needs at least the program to run"),
  timeout: DurationMs.default(parseDuration(DEFAULT_HOOK_TIMEOUT)),
});

/** `on_renew: {signal: HUP, pid_file: PATH}`: signals the process whose PID the file holds. */
export const SignalHookConfig = z.strictObject({
  signal: z.enum(HOOK_SIGNALS, { error: `must be one of ${HOOK_SIGNALS.join(", ")}` }),
  pid_file: z.string({ error: "required: the file holding the process id to signal" }).min(1),
  timeout: DurationMs.default(parseDuration(DEFAULT_HOOK_TIMEOUT)),
});

/** `on_renew`: what to do after an output's files are written. */
export const OnRenewConfig = z.custom<unknown>().transform((v, ctx) => {
  // Picked by key so the error names the fields of the form the operator meant.
  const isObject = typeof v === "object" && v !== null;
  const schema = isObject && "signal" in v ? SignalHookConfig : ExecHookConfig;
  if (!isObject || !("signal" in v || "exec" in v)) {
    ctx.addIssue({
      code: "custom",
      message: "must be {exec: [program, args…]} or {signal: HUP, pid_file: PATH}",
    });
    return z.NEVER;
  }
  const r = schema.safeParse(v);
  if (!r.success) {
    for (const issue of r.error.issues) {
      ctx.addIssue({ ...issue, code: "custom", path: issue.path });
    }
    return z.NEVER;
  }
  return r.data as ExecHookConfig | SignalHookConfig;
});
/** `on_renew: {exec}`, parsed. */
export type ExecHookConfig = z.infer<typeof ExecHookConfig>;
/** `on_renew: {signal}`, parsed. */
export type SignalHookConfig = z.infer<typeof SignalHookConfig>;
/** `on_renew`, parsed. */
export type OnRenewConfig = ExecHookConfig | SignalHookConfig;

/**
 * Per-output lifetime override (Teleport's `CredentialLifetime`): both or
 * neither, and the TTL above the interval is only advised, as in Teleport.
 */
const LifetimeOverride = {
  credential_ttl: DurationMs.optional(),
  renewal_interval: DurationMs.optional(),
  /** A reload hook run after each successful write (not a lifetime, but every output has one). */
  on_renew: OnRenewConfig.optional(),
};

function lifetimeTogether(
  v: { credential_ttl?: number; renewal_interval?: number },
  ctx: z.RefinementCtx,
): void {
  if ((v.credential_ttl === undefined) !== (v.renewal_interval === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: [v.credential_ttl === undefined ? "credential_ttl" : "renewal_interval"],
      message: "credential_ttl and renewal_interval must be set together",
    });
  }
}

/**
 * The `identity` output: certificates and key for tsh, tctl, OpenSSH. With
 * `credential_ttl` and `renewal_interval` it has certificates of its own;
 * without, it copies the bot's.
 */
export const IdentityOutputConfig = z.strictObject({
  type: z.literal("identity"),
  name: ServiceName.optional(),
  /** Teleport's `ssh_config`: `on` (default) also writes `known_hosts` and `ssh_config`. */
  ssh_config: z.enum(["on", "off"]).default("on"),
  destination: z.discriminatedUnion("type", [DirectoryDestination], {
    error: 'type must be "directory"',
  }),
  ...LifetimeOverride,
}).superRefine(lifetimeTogether);

/** `selector` of the workload identity outputs: a `workload_identity` by name. */
export const WorkloadIdentitySelectorConfig = z.strictObject({
  name: z.string({ error: "required: the workload_identity resource's name" }).min(1),
}, { error: "required: selector with the workload_identity name, e.g. {name: my-wi}" });

/** The `ssh_host` output: a host key and certificate for sshd. */
export const SshHostOutputConfig = z.strictObject({
  type: z.literal("ssh_host"),
  name: ServiceName.optional(),
  destination: DirectoryOnly,
  principals: z.array(
    HostPrincipal,
    { error: "required: the host names (and addresses) the certificate is for" },
  ).min(1, "at least one principal is required"),
  ...LifetimeOverride,
}).superRefine(lifetimeTogether);

/** The `workload-identity-x509` output: an X.509 SVID. */
export const WorkloadIdentityX509OutputConfig = z.strictObject({
  type: z.literal("workload-identity-x509"),
  name: ServiceName.optional(),
  destination: DirectoryOnly,
  selector: WorkloadIdentitySelectorConfig,
  ...LifetimeOverride,
}).superRefine(lifetimeTogether);

/** The `workload-identity-jwt` output: a JWT-SVID. */
export const WorkloadIdentityJwtOutputConfig = z.strictObject({
  type: z.literal("workload-identity-jwt"),
  name: ServiceName.optional(),
  destination: DirectoryOnly,
  selector: WorkloadIdentitySelectorConfig,
  audiences: z.array(z.string().min(1), { error: "required: at least one audience" })
    .min(1, "at least one audience is required"),
  ...LifetimeOverride,
}).superRefine(lifetimeTogether);

/** Any output or service Keybound implements. */
export const ServiceConfig = z.discriminatedUnion("type", [
  IdentityOutputConfig,
  SshHostOutputConfig,
  WorkloadIdentityX509OutputConfig,
  WorkloadIdentityJwtOutputConfig,
], {
  error:
    'unsupported service type (Keybound supports: "identity", "ssh_host", "workload-identity-x509", "workload-identity-jwt")',
});
/** An output or service. */
export type ServiceConfig = z.infer<typeof ServiceConfig>;

/** `onboarding.bound_keypair`. */
export const BoundKeypairOnboarding = z.strictObject({
  registration_secret: z.string().min(1).optional(),
  registration_secret_path: z.string().min(1).optional(),
  static_private_key_path: z.string().min(1).optional(),
});

/** `onboarding`. */
export const OnboardingConfig = z.strictObject({
  join_method: z.literal("bound_keypair", {
    error: "unsupported join method (Keybound supports: bound_keypair)",
  }),
  token: z.string({ error: "required: the name of the bound_keypair join token" }).min(1),
  bound_keypair: BoundKeypairOnboarding.default({}),
  ca_pins: z.array(CaPin).default([]),
  ca_path: z.string().min(1).optional(),
});
/** `onboarding`, parsed. */
export type OnboardingConfig = z.infer<typeof OnboardingConfig>;

/** The whole file, before cross-field checks (see {@linkcode checkConfig}). */
const TbotFileSchema = z.strictObject({
  version: z.literal("v2", {
    error:
      'unsupported config version (Keybound reads "v2"; run Teleport\'s `tbot migrate` for v1)',
  }),
  debug: z.boolean().default(false),
  proxy_server: ServerAddress.optional(),
  auth_server: ServerAddress.optional(),
  onboarding: OnboardingConfig,
  insecure: z.boolean().default(false),
  storage: StorageConfig.default({ type: "directory", path: DEFAULT_STORAGE_PATH }),
  outputs: z.array(ServiceConfig).nullable().default([]),
  services: z.array(ServiceConfig).nullable().default([]),
  credential_ttl: DurationMs.optional(),
  /** Deprecated alias of `credential_ttl`, accepted as Teleport does. */
  certificate_ttl: DurationMs.optional(),
  renewal_interval: DurationMs.default(parseDuration(DEFAULT_RENEWAL_INTERVAL)),
  oneshot: z.boolean().default(false),
  diag_addr: z.string().refine(isHostPort, {
    message: "must be host:port, e.g. 127.0.0.1:3000",
  }).optional(),
  /** Kept as written (for `tbot configure`); its parts are already in the fields above. */
  join_uri: z.string().optional(),
});

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * `join_uri` stands for the address, `onboarding.join_method`,
 * `onboarding.token` and, when it carries one, the registration secret: they
 * are filled in before validation, so every rule of those fields applies. A
 * field it fills may not be set beside it (which one would win is a guess).
 */
function expandJoinUri(raw: unknown, ctx: z.RefinementCtx): unknown {
  if (!isObject(raw) || raw.join_uri === undefined) return raw;
  const fail = (path: (string | number)[], message: string) => {
    ctx.addIssue({ code: "custom", path, message, input: undefined });
    return raw;
  };
  if (typeof raw.join_uri !== "string") return fail(["join_uri"], `must be ${JOIN_URI_SHAPE}`);
  let u;
  try {
    u = parseJoinUri(raw.join_uri);
  } catch (e) {
    return fail(["join_uri"], (e as Error).message);
  }
  for (const field of ["proxy_server", "auth_server"]) {
    if (raw[field] !== undefined) {
      return fail([field], "not together with join_uri, which names the address");
    }
  }
  const onboarding = raw.onboarding ?? {};
  if (!isObject(onboarding)) return raw;
  if (onboarding.token !== undefined) {
    return fail(["onboarding", "token"], "not together with join_uri, which names the token");
  }
  const bk = onboarding.bound_keypair ?? {};
  if (!isObject(bk)) return raw;
  if (u.registrationSecret !== undefined) {
    for (const field of ["registration_secret", "registration_secret_path"]) {
      if (bk[field] !== undefined) {
        return fail(
          ["onboarding", "bound_keypair", field],
          "not together with a join_uri that carries the registration secret",
        );
      }
    }
  }
  return {
    ...raw,
    [u.addressField]: u.address,
    onboarding: {
      join_method: "bound_keypair",
      ...onboarding,
      token: u.token,
      bound_keypair: u.registrationSecret === undefined
        ? bk
        : { ...bk, registration_secret: u.registrationSecret },
    },
  };
}

/** The whole file, with `join_uri` expanded. */
export const TbotConfigSchema = z.preprocess(expandJoinUri, TbotFileSchema);

/** The configuration the agent runs with. */
export interface TbotConfig {
  /** Always `v2`. */
  version: "v2";
  /** Debug logging. */
  debug: boolean;
  /** Proxy address, when configured that way. */
  proxy_server?: string;
  /** Auth service address, when configured that way. */
  auth_server?: string;
  /** Joining. */
  onboarding: OnboardingConfig;
  /** Skip server certificate verification. */
  insecure: boolean;
  /** The bot's own state. */
  storage: StorageConfig;
  /** `outputs` and `services` together, outputs first (Teleport appends outputs to services). */
  services: ServiceConfig[];
  /** Requested certificate lifetime, milliseconds. */
  credential_ttl: number;
  /** Time between renewals, milliseconds. */
  renewal_interval: number;
  /** Join once, write outputs, exit. */
  oneshot: boolean;
  /** `host:port` of the diagnostics listener. */
  diag_addr?: string;
  /** The joining URI the address, token and maybe the secret came from, as written. */
  join_uri?: string;
}

/** One cross-field problem, with the config path it belongs to. */
export interface ConfigProblem {
  /** Field path (keys and indexes). */
  path: (string | number)[];
  /** What is wrong. */
  message: string;
}

/**
 * Rules that span fields, checked after the file is parsed and again after
 * command-line overrides are applied.
 */
export function checkConfig(c: TbotConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (c.proxy_server && c.auth_server) {
    problems.push({
      path: ["auth_server"],
      message: "only one of proxy_server and auth_server may be set",
    });
  }
  if (!c.proxy_server && !c.auth_server) {
    problems.push({
      path: ["proxy_server"],
      message: "one of proxy_server or auth_server is required",
    });
  }
  const bk = c.onboarding.bound_keypair;
  if (bk.registration_secret && bk.registration_secret_path) {
    problems.push({
      path: ["onboarding", "bound_keypair", "registration_secret_path"],
      message: "only one of 'registration_secret' and 'registration_secret_path' may be set",
    });
  }
  if (c.onboarding.ca_pins.length > 0 && c.onboarding.ca_path) {
    problems.push({
      path: ["onboarding", "ca_path"],
      message: "ca_pins and ca_path are mutually exclusive",
    });
  }
  if (c.insecure && (c.onboarding.ca_pins.length > 0 || c.onboarding.ca_path)) {
    problems.push({
      path: ["insecure"],
      message: "insecure cannot be combined with onboarding.ca_pins or onboarding.ca_path",
    });
  }
  const address = c.auth_server ?? c.proxy_server;
  const field = c.auth_server ? "auth_server" : "proxy_server";
  if (address) {
    const a = parseServerAddress(address);
    if (a.scheme === "http:" && !(c.insecure && isLoopbackHost(a.hostname))) {
      problems.push({
        path: [field],
        message: "plain http:// is allowed only with insecure: true and a loopback address",
      });
    }
  }
  const secret = bk.registration_secret;
  c.services.forEach((s, i) => {
    const hook = s.on_renew as OnRenewConfig | undefined;
    if (secret && hook && "exec" in hook && hook.exec.some((a) => a.includes(secret))) {
      problems.push({
        path: ["services", i, "on_renew", "exec"],
        message:
          "must not contain the registration secret (a command line is visible to every user)",
      });
    }
  });
  c.services.forEach((s, i) => {
    const storage = c.storage.type === "memory" ? undefined : c.storage.path;
    if (s.destination.readers && storage && samePath(s.destination.path, storage)) {
      problems.push({
        path: ["services", i, "destination", "readers"],
        message: "the bot's storage directory is never shared: give the output its own directory",
      });
    }
  });
  const names = new Set<string>();
  c.services.forEach((s, i) => {
    const name = serviceName(s, i);
    if (names.has(name)) {
      problems.push({ path: ["services", i, "name"], message: `duplicate service name "${name}"` });
    }
    names.add(name);
  });
  return problems;
}

function samePath(a: string, b: string): boolean {
  const norm = (p: string) => p.replace(/\/+$/, "").replace(/\/+/g, "/") || "/";
  return norm(a) === norm(b);
}

/** The name a service reports under: its `name`, or `<type>-output-<n>` (1-based) like Teleport. */
export function serviceName(s: ServiceConfig, index: number): string {
  return s.name ?? `${s.type}-output-${index + 1}`;
}
