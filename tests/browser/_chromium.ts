/**
 * Real headless Chromium for tests, driven with playwright-core (npm) over
 * its pipe transport. Debian's `chromium` is used as installed; nothing is
 * downloaded. Outside CI a machine without it skips the browser tests; in CI
 * (`.ci/run` installs it) they must run.
 *
 * @module
 */
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { ignoreUnless } from "../_tools.ts";

/** The Chromium binary the tests drive (`KEYBOUND_CHROMIUM` overrides). */
export const CHROMIUM_PATH = Deno.env.get("KEYBOUND_CHROMIUM") ?? "/usr/bin/chromium";

function present(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** `ignore` for a browser test: true only outside CI on a machine without Chromium. */
export const IGNORE_WITHOUT_CHROMIUM = ignoreUnless(
  "browser tests",
  present(CHROMIUM_PATH) ? undefined : `needs ${CHROMIUM_PATH} (apt-get install chromium)`,
);

/** A launched browser; disposing it closes every page and the browser process. */
export interface RunningBrowser extends AsyncDisposable {
  /** The playwright browser (absent for a persistent profile). */
  browser?: Browser;
  /** The browsing context pages open in. */
  context: BrowserContext;
  /** Opens a page that forwards its console errors and uncaught exceptions to `errors`. */
  newPage(): Promise<Page>;
  /** Console errors and page exceptions seen so far, for failure messages. */
  errors: string[];
  /** Closes the browser. */
  close(): Promise<void>;
}

/**
 * Launches headless Chromium. With `profileDir` the browser keeps its
 * profile (IndexedDB included) in that directory across launches; without it
 * the profile is temporary.
 */
export async function launchChromium(profileDir?: string): Promise<RunningBrowser> {
  if (!present(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH} (apt-get install chromium)`);
  }
  // As root Chromium needs --no-sandbox; playwright adds it (chromiumSandbox: false).
  const options = { executablePath: CHROMIUM_PATH, headless: true, timeout: 60_000 };
  let browser: Browser | undefined;
  let context: BrowserContext;
  if (profileDir) {
    context = await chromium.launchPersistentContext(profileDir, options);
  } else {
    browser = await chromium.launch(options);
    context = await browser.newContext();
  }
  const errors: string[] = [];
  const close = async () => {
    await context.close().catch(() => {});
    await browser?.close().catch(() => {});
  };
  return {
    browser,
    context,
    errors,
    async newPage() {
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(`console: ${m.text()}`);
      });
      return page;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
