/**
 * The browser bot in real Chromium with persistent profiles: first join with
 * a registration secret, a refresh with the stored key after a reload (no
 * recovery consumed), keys that cannot be exported, and a copy of the
 * profile caught by the join-state/generation checks.
 *
 * @module
 */
import type { Page } from "playwright-core";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import type { BotInstance, Token } from "../../src/resources/schemas.ts";
import { freePort } from "../interop/_interop_fixture.ts";
import { provisionBot } from "../workers/_join_fixture.ts";
import { startLoopbackAuth } from "../workers/_loopback_auth.ts";
import { IGNORE_WITHOUT_CHROMIUM, launchChromium } from "./_chromium.ts";
import { bundlePages, pageUrl, servePages } from "./_page_server.ts";
import { logMentionsRefusal, probeStoredKeys } from "./_in_page.ts";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

const EXAMPLES = new URL("../../runtime-adapters/browser/examples/", import.meta.url);

interface Shown {
  state: string;
  instance: string;
  generation: number;
}

async function waitShown(page: Page): Promise<Shown> {
  await page.waitForSelector("#status:not([data-state=loading]):not([data-state=starting])", {
    timeout: 60_000,
  });
  return {
    state: await page.getAttribute("#status", "data-state") ?? "",
    instance: await page.textContent("#instance") ?? "",
    generation: Number(await page.textContent("#generation")),
  };
}

Deno.test({
  name: "browser bot: join, reload refreshes with the stored key, keys not exportable, copy caught",
  ignore: IGNORE_WITHOUT_CHROMIUM,
  sanitizeResources: false,
  async fn(t) {
    await using pages = await bundlePages([{
      name: "bot",
      entry: new URL("bot_page.ts", EXAMPLES),
      html: new URL("bot.html", EXAMPLES),
    }]);
    // IndexedDB is per origin, port included: the page keeps this port for the whole test.
    await using site = servePages(pages, freePort());
    await using auth = await startLoopbackAuth("kiosk.example", {
      app: { webOrigins: [site.origin] },
    });
    const secret = await provisionBot(auth.api, "kiosk");
    const base = `${pageUrl(site.origin, "bot")}#auth=${encodeURIComponent(auth.url)}&token=kiosk`;
    const profile = await Deno.makeTempDir({ prefix: "keybound-profile-" });
    const copy = await Deno.makeTempDir({ prefix: "keybound-profile-copy-" });
    const recoveries = async () =>
      ((await auth.api.get("token", "kiosk")) as Token).status?.bound_keypair?.recovery_count;
    try {
      let first: Shown;
      await t.step("first join with the registration secret", async () => {
        await using browser = await launchChromium(profile);
        const page = await browser.newPage();
        await page.goto(`${base}&secret=${encodeURIComponent(secret)}`);
        first = await waitShown(page);
        assertEquals(first.state, "ready", await page.textContent("#log") ?? "");
        assertEquals(first.generation, 1);
        // The runner's startup heartbeat reaches the server, with the page's host.
        const heartbeat = async () =>
          ((await auth.api.get("bot_instance", `kiosk/${first.instance}`)) as BotInstance).status
            .initial_heartbeat;
        const deadline = performance.now() + 30_000;
        while (!(await heartbeat()) && performance.now() < deadline) await delay(200);
        const hb = await heartbeat();
        assertEquals([hb?.hostname, hb?.os, hb?.is_startup], [
          new URL(site.origin).host,
          "browser",
          true,
        ]);
        // A second tab of the same origin cannot run the same bot at the same time.
        const second = await browser.newPage();
        await second.goto(base);
        assertEquals((await waitShown(second)).state, "failed");
        assertStringIncludes(await second.textContent("#status") ?? "", "in use by another tab");
      });
      const recoveriesAfterJoin = await recoveries();

      await t.step("keys are CryptoKey objects that refuse export; no PEM in storage", async () => {
        await using browser = await launchChromium(profile);
        const page = await browser.newPage();
        await page.goto(base);
        await waitShown(page);
        const probe = await page.evaluate(probeStoredKeys);
        assert(probe.keys >= 2, `expected the bound and certificate keys, found ${probe.keys}`);
        assertEquals(new Set(probe.refusals), new Set(["InvalidAccessError"]));
        assertEquals(probe.pemFiles, []);
      });

      await t.step(
        "a reload refreshes with the stored key: same instance, no recovery",
        async () => {
          await using browser = await launchChromium(profile);
          const page = await browser.newPage();
          await page.goto(base); // no secret: the stored key is all it has
          const before = await waitShown(page);
          await page.reload();
          const after = await waitShown(page);
          assertEquals(after.state, "ready");
          assertEquals(after.instance, first!.instance);
          assertEquals(after.generation, before.generation + 1);
          assertEquals(await recoveries(), recoveriesAfterJoin);
          assertEquals(browser.errors, []);
        },
      );

      await t.step("a copied profile is caught by the join-state/generation checks", async () => {
        await new Deno.Command("cp", { args: ["-a", `${profile}/.`, copy] }).output();
        // The original moves on…
        {
          await using browser = await launchChromium(profile);
          const page = await browser.newPage();
          await page.goto(base);
          assertEquals((await waitShown(page)).state, "ready");
        }
        // …so the copy presents a stale join state and generation.
        await using browser = await launchChromium(copy);
        const page = await browser.newPage();
        await page.goto(base);
        await page.waitForFunction(logMentionsRefusal, undefined, { timeout: 60_000 });
        assertEquals(await page.getAttribute("#status", "data-state"), "unhealthy");
        assertMatch(
          await page.textContent("#status") ?? "",
          /JOIN_STATE_INVALID|GENERATION_MISMATCH/,
        );
        const locks = await auth.api.list("lock");
        assert(locks.length > 0, "no lock was created for the copied bot");
        assertStringIncludes(JSON.stringify(locks), "kiosk");
      });
    } finally {
      await Deno.remove(profile, { recursive: true });
      await Deno.remove(copy, { recursive: true });
    }
  },
});
