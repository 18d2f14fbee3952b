/**
 * Test pages for browser tests: an HTML shell loading one bundled ES module,
 * served under `/test/` either by its own loopback server or in front of an
 * auth service. Pages are bundled with the same `deno bundle` path the Worker
 * tests use (runtime-adapters/workers/build.ts).
 *
 * @module
 */
import { bundleWorker, type WorkerBundle } from "../../runtime-adapters/workers/build.ts";
import { type FetchApp, serveApp } from "../../runtime-adapters/deno/serve.ts";

/** A page to serve: `/test/NAME.html` loads the bundle of `entry` from `/test/NAME.js`. */
export interface TestPage {
  /** The page's name (lowercase letters, digits, `-` and `_`). */
  name: string;
  /** The entry module, bundled for the browser. */
  entry: URL;
  /** The page's HTML (loading `./NAME.js`); a bare shell by default. */
  html?: URL;
}

/** Bundled pages; disposing them removes the bundles. */
export interface PageBundle extends AsyncDisposable {
  /** An app serving the pages under `/test/` and handing everything else to `app` (or 404). */
  around(app?: FetchApp): FetchApp;
  /** Removes the bundles. */
  remove(): Promise<void>;
}

const NOT_FOUND: FetchApp = { fetch: () => new Response("not found", { status: 404 }) };

function shell(name: string): string {
  return `<!doctype html><meta charset="utf-8"><title>${name}</title>` +
    // No favicon request: it would log a 404 that the tests count as a page error.
    `<link rel="icon" href="data:,">` +
    `<script type="module" src="./${name}.js"></script><body></body>`;
}

/** Bundles every page's entry module for the browser. */
export async function bundlePages(pages: TestPage[]): Promise<PageBundle> {
  const bundles: WorkerBundle[] = [];
  const remove = async () => {
    await Promise.all(bundles.map((b) => b.remove()));
  };
  const scripts = new Map<string, string>();
  const htmls = new Map<string, string>();
  try {
    for (const p of pages) {
      const b = await bundleWorker(p.entry);
      bundles.push(b);
      scripts.set(p.name, await Deno.readTextFile(b.path));
      htmls.set(p.name, p.html ? await Deno.readTextFile(p.html) : shell(p.name));
    }
  } catch (e) {
    await remove();
    throw e;
  }
  return {
    around: (app = NOT_FOUND) => ({
      fetch(request, env) {
        const m = /^\/test\/([a-z0-9_-]+)\.(html|js)$/.exec(new URL(request.url).pathname);
        const script = m && request.method === "GET" ? scripts.get(m[1]) : undefined;
        if (m && script !== undefined) {
          return m[2] === "html"
            ? new Response(htmls.get(m[1]), { headers: { "content-type": "text/html" } })
            : new Response(script, { headers: { "content-type": "text/javascript" } });
        }
        return app.fetch(request, env);
      },
    }),
    remove,
    [Symbol.asyncDispose]: remove,
  };
}

/** The URL of page `name` on `origin`. */
export function pageUrl(origin: string, name: string): string {
  return `${origin}/test/${name}.html`;
}

/** A loopback server of pages only; disposing it stops the server. */
export interface PageServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Serves `bundle` alone on 127.0.0.1 (`port` 0 picks a free one; a fixed
 * port keeps an IndexedDB origin across browser launches).
 */
export function servePages(bundle: PageBundle, port = 0): PageServer {
  const server = serveApp(bundle.around(), { hostname: "127.0.0.1", port });
  const close = () => server.shutdown();
  return { origin: server.url, close, [Symbol.asyncDispose]: close };
}
