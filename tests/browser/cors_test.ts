/**
 * `--web-origin` with real pages: the auth service process lists one page
 * origin; a page there joins over `fetch`, a page on another loopback origin
 * is refused before its request runs.
 *
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { joinThenRefresh } from "../conformance/core_cases.ts";
import { provisionBot } from "../workers/_join_fixture.ts";
import { IGNORE_WITHOUT_CHROMIUM, launchChromium } from "./_chromium.ts";
import { bundlePages, pageUrl, servePages } from "./_page_server.ts";

type JoinFn = (url: string, token: string, secret: string) => Promise<string>;

Deno.test({
  name: "CORS: a page on a listed origin joins; a page on another origin is refused",
  ignore: IGNORE_WITHOUT_CHROMIUM,
  async fn() {
    await using pages = await bundlePages([
      { name: "cors", entry: new URL("./cors_page.ts", import.meta.url) },
    ]);
    await using listed = servePages(pages);
    await using other = servePages(pages);
    const dataDir = await Deno.makeTempDir({ prefix: "keybound-cors-" });
    const auth = await spawnAuthService({
      dataDir,
      args: ["--insecure-no-tls", "--cluster-name", "cors.example", "--web-origin", listed.origin],
    });
    try {
      const admin = await parseIdentityFile(await Deno.readTextFile(`${dataDir}/admin-identity`));
      const api = new AdminApiClient({
        baseUrl: auth.url,
        signer: { certDer: admin.certDer, privateKey: admin.privateKey },
      });
      const listedSecret = await provisionBot(api, "listed");
      const otherSecret = await provisionBot(api, "other");
      await using browser = await launchChromium();
      const join = async (origin: string, token: string, secret: string) => {
        const page = await browser.newPage();
        await page.goto(pageUrl(origin, "cors"));
        await page.waitForFunction(() => "keyboundJoin" in globalThis);
        return await page.evaluate(
          ([u, t, s]) => (globalThis as unknown as { keyboundJoin: JoinFn }).keyboundJoin(u, t, s),
          [auth.url, token, secret],
        );
      };
      // First join and a signed refresh (authorization header, preflighted) from the listed origin.
      assertEquals(await join(listed.origin, "listed", listedSecret), "joined");
      assertEquals(browser.errors, []);
      // The other origin: its preflight is refused, so the page sees a network error.
      assertStringIncludes(await join(other.origin, "other", otherSecret), "CONNECTION_FAILED");
      assertStringIncludes(browser.errors.join("\n"), "blocked by CORS policy");
      // Nothing ran for it: the registration secret is still unused.
      await joinThenRefresh({ baseUrl: auth.url, tokenName: "other", secret: otherSecret });
    } finally {
      await auth.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
