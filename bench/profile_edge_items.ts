/**
 * What each piece of a Durable Object renewal beyond its floor weighs (dev
 * tool, not part of `deno task bench`): for each item below, a copy of this
 * checkout's last commit with that piece taken out (a measurement hack,
 * never a working bot: it skips a check, a log line or a library) renews
 * against an unchanged copy in `tests/workers/do_renewal_pairs.ts`, two
 * workerd side by side, alternating, once with each copy first. The
 * item's weight is the mean over both orders of the paired median
 * difference hack − unchanged (the second workerd measures a little
 * cheaper, which the two orders cancel). A/A runs of that tool differ by
 * up to ~0.08 ms at 400 rounds on a loaded machine: read weights under
 * ~0.05 ms as "nothing measurable".
 *
 * Each hack is a literal text replacement that must match exactly once: a
 * changed source makes the tool stop with the item's name, not measure
 * something else. docs/benchmarks.md ("Session 13: client and edge") has
 * the figures and what stands between the renewal and its floor.
 *
 * `deno run -A --unstable-kv bench/profile_edge_items.ts [rounds] [item ...]`
 *
 * @module
 */

/** One measurement hack: literal replacements in files of the copy. */
interface Item {
  /** What the hack takes out of the renewal. */
  what: string;
  /** Path in the checkout → [text to find exactly once, its replacement][]. */
  edits: Record<string, [string, string][]>;
}

const JOSE_REQUEST = `  const jws = await new CompactSign(utf8(JSON.stringify(claims)))
    .setProtectedHeader({
      alg: algOf(signer.privateKey),
      typ: SIGNED_REQUEST_TYP,
      x5c: [toBase64(signer.certDer)],
    })
    .sign(signer.privateKey);`;
const RAW_REQUEST = `  const head = toBase64Url(utf8(JSON.stringify({
    alg: algOf(signer.privateKey),
    typ: SIGNED_REQUEST_TYP,
    x5c: [toBase64(signer.certDer)],
  })));
  const input = head + "." + toBase64Url(utf8(JSON.stringify(claims)));
  const jws = input + "." + toBase64Url(await rawSign(signer.privateKey, utf8(input)));`;
const JOSE_SOLUTION = `  return new CompactSign(utf8(challenge))
    .setProtectedHeader({ alg: algOf(privateKey), typ: "JWT" })
    .sign(privateKey);`;
const RAW_SOLUTION =
  `  const input = toBase64Url(utf8(JSON.stringify({ alg: algOf(privateKey), typ: "JWT" }))) +
    "." + toBase64Url(utf8(challenge));
  return rawSign(privateKey, utf8(input)).then((s) => input + "." + toBase64Url(s));`;

const ITEMS: Record<string, Item> = {
  zod: {
    what: "zod's validation of the two join answers (callApi returns the parsed JSON)",
    edits: {
      "src/protocol/http_client.ts": [[
        "const parsed = call.response.safeParse(json);",
        "const parsed = { success: true as const, data: json, error: undefined as never };",
      ]],
    },
  },
  identity: {
    what:
      "the new certificate's checks (validity and SPKI read, key compared, authorized_keys line)",
    edits: {
      "src/agent/identity.ts": [
        [
          `  const { notBefore, notAfter, spki } = readValidityAndSpki(certDer);
  if (!timingSafeEqual(spki, await exportSpki(subjectKey.publicKey))) {
    throw new BadServerResponseError(
      "the issued certificate does not carry the public key the join sent",
    );
  }`,
          "  const notBefore = new Date(0), notAfter = new Date(result.expires);",
        ],
        [
          "publicKeySsh: await toAuthorizedKey(subjectKey.publicKey),",
          'publicKeySsh: "ecdsa-sha2-nistp256 AAAA",',
        ],
      ],
    },
  },
  log: {
    what: 'the log line "renewed the bot identity" (its console.log a no-op)',
    edits: {
      "runtime-adapters/workers/bot_identity_do.ts": [[
        "write: (line) => console.log(line),",
        "write: (_line) => {},",
      ]],
    },
  },
  jose: {
    what: "jose around the two signatures (compact JWS made by hand over the same WebCrypto sign)",
    edits: {
      "src/protocol/signed_request.ts": [
        [JOSE_REQUEST, RAW_REQUEST],
        [
          'import { algOf } from "../crypto/keys.ts";',
          'import { algOf, sign as rawSign } from "../crypto/keys.ts";',
        ],
      ],
      "src/protocol/challenge.ts": [
        [JOSE_SOLUTION, RAW_SOLUTION],
        [
          'import { algOf, keyId } from "../crypto/keys.ts";',
          'import { algOf, keyId, sign as rawSign } from "../crypto/keys.ts";',
        ],
        [
          'import { fromUtf8, utf8 } from "../util/encoding.ts";',
          'import { fromUtf8, toBase64Url, utf8 } from "../util/encoding.ts";',
        ],
      ],
    },
  },
  callapi: {
    what:
      "callApi's URL parsing and resend-after-reset loop (the base URL and path joined as text)",
    edits: {
      "src/protocol/http_client.ts": [
        [
          'const url = new URL(call.path, target.baseUrl.replace(/\\/+$/, "") + "/");',
          "const url = { pathname: call.path, origin: target.baseUrl, href: target.baseUrl + call.path };",
        ],
        [
          "res = await resendingAfterReset(",
          "res = await ((send: () => Promise<Response>, _signal?: AbortSignal) => send())(",
        ],
        ["send(url, {", "send(url.href, {"],
      ],
    },
  },
  runner: {
    what: "the agent runner around the renewal (the identity service called, the alarm set)",
    edits: {
      "runtime-adapters/workers/bot_identity_do.ts": [
        [
          "interface Loaded {\n  config: BotConfig;\n  runner: BotRunner;\n}",
          "interface Loaded {\n  config: BotConfig;\n  runner: BotRunner;\n  service: IdentityService | null;\n}",
        ],
        ["    return { config, runner };", "    return { config, runner, service };"],
        [
          "      const id = await this.#ready().runner.renew();",
          "      const id = await this.#ready().service!.renew();\n" +
          "      await this.ctx.storage.setAlarm(Date.now() + 600_000);",
        ],
      ],
    },
  },
  rpc: {
    what: "the renewal RPC's answer (generation and instance id) reduced to { ok }",
    edits: {
      "runtime-adapters/workers/bot_identity_do.ts": [[
        "      return { ok: true, generation: id.generation, bot_instance_id: id.botInstanceId };",
        "      return { ok: true } as { ok: true; generation: number; bot_instance_id: string };",
      ]],
    },
  },
};

const root = new URL("..", import.meta.url).pathname;

async function run(cmd: string, args: string[], cwd = root): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout);
}

/** A copy of the checkout's last commit in `dir`, with `item`'s edits applied. */
async function copyOf(dir: string, item?: Item): Promise<string> {
  await Deno.mkdir(dir);
  await run("sh", ["-c", `git archive HEAD | tar -x -C '${dir}'`]);
  for (const [path, edits] of Object.entries(item?.edits ?? {})) {
    let text = await Deno.readTextFile(`${dir}/${path}`);
    for (const [from, to] of edits) {
      const n = text.split(from).length - 1;
      if (n !== 1) throw new Error(`${path}: the hack's text is found ${n} times, not once`);
      text = text.replace(from, () => to);
    }
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
  return dir;
}

/** do_renewal_pairs.ts on trees A and B: the median of the paired differences B − A, ms. */
async function pairs(a: string, b: string, rounds: number): Promise<number> {
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    "--unstable-kv",
    "tests/workers/do_renewal_pairs.ts",
    a,
    b,
    String(rounds),
  ]);
  const line = out.split("\n").find((l) => l.startsWith('{"rounds"'));
  if (!line) throw new Error(`do_renewal_pairs printed no result:\n${out}`);
  return (JSON.parse(line) as { paired_diff_median_ms: number }).paired_diff_median_ms;
}

if (import.meta.main) {
  const rounds = Number(Deno.args[0] ?? 400);
  const names = Deno.args.length > 1 ? Deno.args.slice(1) : Object.keys(ITEMS);
  for (const n of names) if (!ITEMS[n]) throw new Error(`no item ${n}: ${Object.keys(ITEMS)}`);
  const tmp = await Deno.makeTempDir({ prefix: "keybound-edge-items-" });
  try {
    const base = await copyOf(`${tmp}/base`);
    console.log(`${rounds} rounds per order, load ${Deno.loadavg()[0]}; weight = hack − unchanged`);
    for (const name of names) {
      const hack = await copyOf(`${tmp}/${name}`, ITEMS[name]);
      const first = await pairs(base, hack, rounds);
      const second = -(await pairs(hack, base, rounds));
      const weight = (first + second) / 2;
      console.log(
        `${name.padEnd(9)} ${weight.toFixed(3)} ms (${first.toFixed(3)}, ${second.toFixed(3)})  ` +
          `without ${ITEMS[name].what}`,
      );
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
