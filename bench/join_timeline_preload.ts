/**
 * Loaded into the auth process by `bench/join_timeline.ts` with `deno run
 * --preload` (dev tool, not part of `deno task bench`): records, on the
 * shared wall clock (`performance.timeOrigin + performance.now()`), a span
 * for every WebCrypto call, every Deno KV read and commit and every HTTP
 * request the process serves, without touching the service's code. A
 * `GET /__timeline` answers the spans recorded so far and clears them.
 *
 * @module
 */
interface Span {
  what: string;
  t0: number;
  t1: number;
}
let spans: Span[] = [];
const now = () => performance.timeOrigin + performance.now();

function wrap(obj: Record<string, unknown>, name: string, label: (args: unknown[]) => string) {
  const original = (obj[name] as (...a: unknown[]) => Promise<unknown>).bind(obj);
  obj[name] = (...args: unknown[]) => {
    const t0 = now();
    const what = label(args);
    const p = original(...args);
    return p.finally(() => spans.push({ what, t0, t1: now() }));
  };
}

/** Like {@linkcode wrap}, for a method on a prototype (`this` is the instance). */
function wrapMethod(
  proto: Record<string, unknown>,
  name: string,
  label: (args: unknown[]) => string,
) {
  const original = proto[name] as (...a: unknown[]) => Promise<unknown>;
  proto[name] = function (this: unknown, ...args: unknown[]) {
    const t0 = now();
    const what = label(args);
    return original.apply(this, args).finally(() => spans.push({ what, t0, t1: now() }));
  };
}

function algName(a: unknown): string {
  const alg = typeof a === "string" ? a : (a as { name: string; namedCurve?: string }).name;
  return alg === "ECDSA" ? "P-256" : alg;
}

const subtle = crypto.subtle as unknown as Record<string, unknown>;
for (const m of ["digest", "sign", "verify", "encrypt", "decrypt", "importKey", "exportKey"]) {
  wrap(
    subtle,
    m,
    (a) =>
      m === "importKey"
        ? `${m} ${a[0]} ${algName(a[2])}`
        : m === "exportKey"
        ? `${m} ${a[0]}`
        : `${m} ${algName(a[0])}`,
  );
}

const kvProto = Deno.Kv.prototype as unknown as Record<string, unknown>;
wrapMethod(kvProto, "get", () => "kv get");
wrapMethod(kvProto, "getMany", (a) => `kv getMany(${(a[0] as unknown[]).length})`);
wrapMethod(
  Deno.AtomicOperation.prototype as unknown as Record<string, unknown>,
  "commit",
  () => "kv commit",
);

const serve = Deno.serve;
// deno-lint-ignore no-explicit-any
const tracedServe = (options: any, handler?: any) => {
  const inner = handler ?? options.handler;
  const wrapped = async (req: Request, info: unknown) => {
    if (new URL(req.url).pathname === "/__timeline") {
      const out = spans;
      spans = [];
      return Response.json(out);
    }
    const t0 = now();
    const what = `serve ${new URL(req.url).pathname.split("/").pop()}`;
    try {
      return await inner(req, info);
    } finally {
      spans.push({ what, t0, t1: now() });
    }
  };
  return handler ? serve(options, wrapped) : serve({ ...options, handler: wrapped });
};
Object.defineProperty(Deno, "serve", { value: tracedServe, configurable: true, writable: true });
