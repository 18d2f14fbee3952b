/**
 * Test Worker (./fetch_reset_test.ts): `GET /?url=U&n=N` sends N POSTs to U
 * with workerd's own `fetch`, one after the other, and answers what each
 * did — the status, or the error's name, message, own properties and cause.
 *
 * @module
 */

/** What one fetch did. */
export type Outcome =
  | { status: number }
  | { error: { name: string; message: string; props: Record<string, unknown>; cause: unknown } };

export default {
  async fetch(request: Request): Promise<Response> {
    const params = new URL(request.url).searchParams;
    const outcomes: Outcome[] = [];
    for (let i = 0; i < Number(params.get("n") ?? "1"); i++) {
      try {
        const res = await fetch(params.get("url")!, { method: "POST", body: "0123456789" });
        await res.arrayBuffer();
        outcomes.push({ status: res.status });
      } catch (err) {
        const e = err as Error;
        outcomes.push({
          error: {
            name: e.name,
            message: e.message,
            props: Object.fromEntries(Object.entries(e)),
            cause: e.cause === undefined ? null : String(e.cause),
          },
        });
      }
    }
    return Response.json(outcomes);
  },
};
