/**
 * The browser bot in real Chromium across a user CA rotation it slept
 * through (the tab was closed): on the next visit its stored certificate,
 * still within its TTL, is refused with `CA_KEY_DROPPED`, and the bot
 * recovers once with its bound key (a new instance) instead of failing.
 * The browser bot keeps no host trust of its own (the page's TLS is the
 * browser's), so this is the rotation case it has.
 *
 * @module
 */
import type { Page } from "playwright-core";
import type { Token } from "../../src/resources/schemas.ts";
import { assertEquals, assertNotEquals, assertStringIncludes } from "../_assert.ts";
import { IGNORE_WITHOUT_CHROMIUM, launchChromium } from "../browser/_chromium.ts";
import { bundlePages, pageUrl, servePages } from "../browser/_page_server.ts";
import { freePort } from "../interop/_interop_fixture.ts";
import { provisionBot } from "../workers/_join_fixture.ts";
import { currentAdmin, startLoopbackAuth } from "../workers/_loopback_auth.ts";

const EXAMPLES = new URL("../../runtime-adapters/browser/examples/", import.meta.url);

async function shown(page: Page) {
  await page.waitForSelector("#status:not([data-state=loading]):not([data-state=starting])", {
    timeout: 60_000,
  });
  return {
    state: await page.getAttribute("#status", "data-state") ?? "",
    instance: await page.textContent("#instance") ?? "",
  };
}

Deno.test({
  name: "rotation (agent): the browser bot recovers once after sleeping through a user CA rotation",
  ignore: IGNORE_WITHOUT_CHROMIUM,
  sanitizeResources: false,
  async fn() {
    await using pages = await bundlePages([{
      name: "bot",
      entry: new URL("bot_page.ts", EXAMPLES),
      html: new URL("bot.html", EXAMPLES),
    }]);
    await using site = servePages(pages, freePort());
    await using auth = await startLoopbackAuth("rotation-kiosk.example", {
      app: { webOrigins: [site.origin] },
    });
    const secret = await provisionBot(auth.api, "kiosk", [], 2);
    const base = `${pageUrl(site.origin, "bot")}#auth=${encodeURIComponent(auth.url)}&token=kiosk`;
    const profile = await Deno.makeTempDir({ prefix: "keybound-rot-profile-" });
    const recoveries = async () =>
      ((await (await currentAdmin(auth)).get("token", "kiosk")) as Token).status!.bound_keypair!
        .recovery_count;
    try {
      let first: { state: string; instance: string };
      {
        await using browser = await launchChromium(profile);
        const page = await browser.newPage();
        await page.goto(`${base}&secret=${encodeURIComponent(secret)}`);
        first = await shown(page);
        assertEquals(first.state, "ready", await page.textContent("#log") ?? "");
      }
      assertEquals(await recoveries(), 1);
      // The whole rotation while no tab is open.
      for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
        await (await currentAdmin(auth)).rotateCa("user", { mode: "manual", phase });
      }
      await using browser = await launchChromium(profile);
      const page = await browser.newPage();
      await page.goto(base);
      const after = await shown(page);
      const log = await page.textContent("#log") ?? "";
      assertEquals(after.state, "ready", log);
      assertNotEquals(after.instance, first.instance, "a recovery: a new bot instance");
      assertEquals(await recoveries(), 2, "one recovery consumed");
      assertStringIncludes(log, "CA rotation dropped");
      // Chromium logs the refused refresh (the CA_KEY_DROPPED answer) and nothing else.
      assertEquals(
        browser.errors.filter((e) => !e.includes("status of 401 (Unauthorized)")),
        [],
      );
    } finally {
      await Deno.remove(profile, { recursive: true });
    }
  },
});
