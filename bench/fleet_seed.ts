/**
 * The fleet backend of the `fleet` section: an auth data directory whose
 * Deno KV file holds 10,000 bots with their tokens, 10,000 bot instances in
 * the steady state of a long-lived bot (ten authentications, ten heartbeats)
 * and 1,000,000 audit events (a refresh's `bot.join`, 1 % recoveries) spread
 * over the last 33 hours, which is what 10,000 bots renewing every 20 minutes
 * write in that time.
 *
 * Seeding takes minutes, so the result is kept under `.bench-data/` (ignored
 * by git), keyed by {@linkcode FLEET_SEED_VERSION}: later runs reuse it until
 * the version changes or the events near their retention. Run alone with
 * `deno run -A --unstable-kv bench/fleet_seed.ts` to seed ahead of a bench.
 *
 * Values go through the server's own builders (`newBotInstance`,
 * `auditMutationsAt`, the resource schemas) and the Deno KV backend the
 * service uses, so rows have the service's shapes and encoding; commits are
 * batched (up to 1,000 rows each) because one row per commit would take an
 * hour.
 *
 * @module
 */
import { DenoKvBackend } from "../runtime-adapters/deno/kv_backend.ts";
import { KV_FILE } from "../src/cli/auth/data_dir.ts";
import { randomHex } from "../src/crypto/random.ts";
import { parseResourceOf } from "../src/resources/validate.ts";
import { AUDIT_RETENTION_MS, auditMutationsAt } from "../src/server/audit.ts";
import {
  type Authentication,
  botInstanceMutation,
  type Heartbeat,
  newBotInstance,
  withAuthentication,
} from "../src/server/bot_instances.ts";
import { resourceKey } from "../src/server/keys.ts";
import type { AtomicOperation, JsonValue, Mutation } from "../src/storage/backend.ts";
import { startAuth } from "./join.ts";

/** Change when the seeded shapes or sizes change: a new version seeds a new directory. */
export const FLEET_SEED_VERSION = 1;

/** What the seed holds. */
export const FLEET_SIZES = { bots: 10_000, events: 1_000_000 } as const;

/** The rare event type `tctl audit ls --type` is measured with (1 % of the events). */
export const RARE_EVENT_TYPE = "join_token.bound_keypair.recovery";

/** Time the seeded events span, ending at the seed time. */
const EVENT_SPAN_MS = 33 * 3600_000;

/** Facts about a seed, stored beside it as `seed.json`. */
export interface FleetSeed {
  /** {@linkcode FLEET_SEED_VERSION}. */
  version: number;
  /** The auth data directory (`--data-dir`). */
  dataDir: string;
  /** Bots (each with a token and one instance). */
  bots: number;
  /** Audit events. */
  events: number;
  /** When the seed was made (epoch ms). */
  seededAt: number;
  /** How long seeding took, s. */
  seconds: number;
  /** Bytes of the KV file (with its WAL) after bootstrap, bots and events, each closed. */
  bytes: { bootstrap: number; bots: number; events: number };
}

/** The cache directory of this seed version. */
export function fleetCacheDir(): string {
  return new URL(`../.bench-data/fleet-v${FLEET_SEED_VERSION}`, import.meta.url).pathname;
}

/** Size of a KV file with its SQLite companions. */
async function kvBytes(path: string): Promise<number> {
  let total = 0;
  for (const p of [path, `${path}-wal`]) {
    total += await Deno.stat(p).then((s) => s.size, () => 0);
  }
  return total;
}

/** Runs `ops` with up to `inFlight` commits at once; throws on a refused commit. */
async function commitAll(backend: DenoKvBackend, ops: Iterable<AtomicOperation>, inFlight = 4) {
  const it = ops[Symbol.iterator]();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    for (let n = it.next(); !n.done; n = it.next()) {
      if (!(await backend.commit(n.value)).ok) throw new Error("seed commit refused");
    }
  }));
}

/** Mutations grouped into commits of at most `rows` mutations. */
function* batches(mutations: Iterable<Mutation[]>, rows: number): Generator<AtomicOperation> {
  let batch: Mutation[] = [];
  for (const m of mutations) {
    if (batch.length + m.length > rows) {
      yield { checks: [], mutations: batch };
      batch = [];
    }
    batch.push(...m);
  }
  if (batch.length > 0) yield { checks: [], mutations: batch };
}

/** A PEM of the size of a P-256 SPKI (what authentications record). */
function pemLike(): string {
  const b64 = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(91))));
  return `-----BEGIN PUBLIC KEY-----\n${b64.slice(0, 64)}\n${
    b64.slice(64)
  }\n-----END PUBLIC KEY-----\n`;
}

function sshKeyLike(): string {
  return `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${btoa(randomHex(16)).slice(0, 43)}`;
}

/** One bot, its token and its instance, as a fleet that has run for a while stores them. */
function botMutations(i: number, now: number): Mutation[] {
  const name = `bot-${String(i).padStart(5, "0")}`;
  const instanceId = crypto.randomUUID();
  const bot = parseResourceOf("bot", {
    kind: "bot",
    version: "v1",
    metadata: { name },
    spec: { roles: ["fleet-reader"], traits: [{ name: "logins", values: ["svc"] }] },
    status: { user_name: `bot-${name}`, role_name: `bot-${name}` },
  });
  const token = parseResourceOf("token", {
    kind: "token",
    version: "v2",
    metadata: { name },
    spec: {
      roles: ["Bot"],
      bot_name: name,
      join_method: "bound_keypair",
      bound_keypair: {
        onboarding: { initial_public_key: sshKeyLike() },
        recovery: { limit: 1, mode: "standard" },
      },
    },
    status: {
      bound_keypair: {
        bound_public_key: sshKeyLike(),
        bound_bot_instance_id: instanceId,
        recovery_count: 1,
        last_recovered_at: new Date(now - 86400_000).toISOString(),
      },
    },
  });
  const auth = (generation: number): Authentication => ({
    authenticated_at: new Date(now - (100 - generation) * 1200_000).toISOString(),
    join_method: "bound_keypair",
    join_token: name,
    generation,
    public_key: pemLike(),
  });
  const expires = new Date(now + AUDIT_RETENTION_MS).toISOString();
  let instance = newBotInstance({ botName: name, instanceId, authentication: auth(1), expires });
  for (let g = 91; g <= 100; g++) instance = withAuthentication(instance, auth(g), expires);
  const heartbeat = (k: number): Heartbeat => ({
    recorded_at: new Date(now - k * 1200_000).toISOString(),
    is_startup: false,
    version: "0.1.0",
    hostname: `node-${i}.fleet.internal`,
    uptime: `${100 - k}h20m`,
    join_method: "bound_keypair",
    one_shot: false,
    architecture: "amd64",
    os: "linux",
  });
  instance = {
    ...instance,
    status: {
      ...instance.status,
      initial_heartbeat: heartbeat(99),
      latest_heartbeats: Array.from({ length: 10 }, (_, k) => heartbeat(9 - k)),
    },
  };
  return [
    { type: "set", key: resourceKey("bot", name), value: bot as unknown as JsonValue },
    { type: "set", key: resourceKey("token", name), value: token as unknown as JsonValue },
    botInstanceMutation(instance),
  ];
}

/** The `n`th event of `total`, older first, ending at `now`. */
function eventMutations(n: number, total: number, now: number): Mutation[] {
  const bot = `bot-${String(n % FLEET_SIZES.bots).padStart(5, "0")}`;
  const time = new Date(now - EVENT_SPAN_MS + Math.floor((n * EVENT_SPAN_MS) / total));
  const common = {
    status: { success: true },
    connection: { remote_addr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:41234` },
    bot_name: bot,
    token_name: bot,
    public_key: sshKeyLike(),
  };
  if (n % 100 === 99) {
    return auditMutationsAt(time, {
      type: RARE_EVENT_TYPE,
      ...common,
      recovery_count: 1,
      recovery_mode: "standard",
    });
  }
  return auditMutationsAt(time, {
    type: "bot.join",
    ...common,
    bot_instance_id: crypto.randomUUID(),
    method: "bound_keypair",
    generation: 100 + Math.floor(n / FLEET_SIZES.bots),
    recovery_count: 1,
    recovery_mode: "standard",
  });
}

function* range<T>(count: number, f: (i: number) => T): Generator<T> {
  for (let i = 0; i < count; i++) yield f(i);
}

/**
 * Seeds `dir` from scratch: bootstraps a cluster with a real `auth start`
 * (the bench's flags), stops it, then writes the fleet into its KV file.
 */
export async function seedFleet(
  dir: string,
  sizes: { bots: number; events: number } = FLEET_SIZES,
  log: (m: string) => void = console.error,
): Promise<FleetSeed> {
  const started = performance.now();
  const dataDir = `${dir}/auth`;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  await (await startAuth(dataDir)).stop();
  const kvPath = `${dataDir}/${KV_FILE}`;
  const bootstrap = await kvBytes(kvPath);
  const now = Date.now();

  let backend = await DenoKvBackend.open(kvPath);
  log(`fleet seed: ${sizes.bots} bots, tokens and instances`);
  await commitAll(backend, batches(range(sizes.bots, (i) => botMutations(i, now)), 150));
  await backend.close();
  const bots = await kvBytes(kvPath);

  backend = await DenoKvBackend.open(kvPath);
  log(`fleet seed: ${sizes.events} audit events`);
  const step = Math.max(1, Math.floor(sizes.events / 10));
  await commitAll(
    backend,
    batches(
      range(sizes.events, (n) => {
        if (n > 0 && n % step === 0) log(`fleet seed: ${n} events`);
        return eventMutations(n, sizes.events, now);
      }),
      1000,
    ),
  );
  await backend.close();
  const seed: FleetSeed = {
    version: FLEET_SEED_VERSION,
    dataDir,
    ...sizes,
    seededAt: now,
    seconds: (performance.now() - started) / 1000,
    bytes: { bootstrap, bots, events: await kvBytes(kvPath) },
  };
  await Deno.writeTextFile(`${dir}/seed.json`, JSON.stringify(seed, null, 2));
  return seed;
}

/** Reuse the cache this long: after it, the oldest events near their 30-day retention. */
const CACHE_MAX_AGE_MS = 20 * 86400_000;

/** The cached fleet seed, seeding it first when absent, stale or of another version. */
export async function ensureFleetSeed(log: (m: string) => void): Promise<FleetSeed> {
  const dir = fleetCacheDir();
  try {
    const seed = JSON.parse(await Deno.readTextFile(`${dir}/seed.json`)) as FleetSeed;
    if (
      seed.version === FLEET_SEED_VERSION && seed.bots === FLEET_SIZES.bots &&
      seed.events === FLEET_SIZES.events && Date.now() - seed.seededAt < CACHE_MAX_AGE_MS
    ) {
      return { ...seed, dataDir: `${dir}/auth` };
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  log(`fleet seed: none cached in ${dir}; seeding (minutes, once)`);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return await seedFleet(dir, FLEET_SIZES, log);
}

if (import.meta.main) {
  const seed = await ensureFleetSeed(console.error);
  console.log(JSON.stringify(seed, null, 2));
}
