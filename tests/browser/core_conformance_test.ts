/**
 * The core conformance suite in real headless Chromium: the cases of
 * ../conformance/core_cases.ts, bundled with the Worker bundler and served
 * by a loopback auth service, plus a join over `fetch` against that service.
 *
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { reportResults } from "../storage/_report.ts";
import type { CaseResult } from "../storage/_results.ts";
import { provisionBot } from "../workers/_join_fixture.ts";
import { startLoopbackAuth } from "../workers/_loopback_auth.ts";
import { IGNORE_WITHOUT_CHROMIUM, launchChromium } from "./_chromium.ts";
import { bundlePages, pageUrl } from "./_page_server.ts";

Deno.test({
  name: "core conformance in Chromium",
  ignore: IGNORE_WITHOUT_CHROMIUM,
  async fn(t) {
    await using pages = await bundlePages([
      { name: "core", entry: new URL("./core_page.ts", import.meta.url) },
    ]);
    await using auth = await startLoopbackAuth("browser.example", { around: pages.around });
    const secret = await provisionBot(auth.api, "page");
    await using browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(pageUrl(auth.url, "core"));
    await page.waitForFunction(() => "keyboundConformance" in globalThis);
    const { runtime, results } = await page.evaluate(
      ([token, s]) =>
        (globalThis as unknown as {
          keyboundConformance(t: string, s: string): Promise<unknown>;
        }).keyboundConformance(token, s),
      ["page", secret],
    ) as { runtime: string; results: CaseResult[] };
    assertEquals(browser.errors, []);
    assertEquals(runtime, "chromium");
    await reportResults(t, results);
  },
});
