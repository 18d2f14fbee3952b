/**
 * The fleet console in real headless Chromium against a real `auth start`
 * process: bots joined by real tbot processes, enrollment with the URL a real
 * `tctl web enroll` printed, every page showing the cluster's live state, a
 * lock made in the console refusing the bot's next join, and revocation.
 * Screenshots of each page go to test-artifacts/console/ (gitignored).
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { provisionBot } from "../workers/_join_fixture.ts";
import { runTbot, tbotYaml } from "../tbot/_harness.ts";
import { IGNORE_WITHOUT_CHROMIUM, launchChromium } from "./_chromium.ts";
import type { Page } from "playwright-core";
import { waitUntil } from "../_wait.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Waits in the page allow for a loaded machine. */
const SLOW = { timeoutMs: 30_000 };
const ARTIFACTS = `${ROOT}test-artifacts/console`;

async function tctl(dataDir: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      `${ROOT}runtime-adapters/deno/entry/tctl.ts`,
      "--data-dir",
      dataDir,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return text;
}

/** The text of every cell of table `id`, row by row. */
function rows(page: Page, id: string): Promise<string[][]> {
  return page.$$eval(
    `table#${id} tbody tr`,
    (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
  );
}

/** In the page: whether the stored console key is extractable, then what each export does. */
const EXPORT_STORED_KEY = `(async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open("keybound-console");
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const kp = await new Promise((resolve, reject) => {
    const r = db.transaction("keys").objectStore("keys").get("console-key");
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const out = [String(kp.privateKey.extractable)];
  for (const format of ["pkcs8", "jwk"]) {
    try {
      await crypto.subtle.exportKey(format, kp.privateKey);
      out.push("exported");
    } catch (e) {
      out.push(e.name);
    }
  }
  return out;
})()`;

async function openPage(page: Page, name: string, table: string): Promise<void> {
  await page.evaluate((n) => (location.hash = `#/${n}`), name);
  await page.waitForSelector(`main[data-page="${name}"] table#${table}`, { timeout: 20_000 });
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
}

Deno.test({
  name: "console: enroll, stay signed in, every page shows the live cluster, lock and revoke",
  ignore: IGNORE_WITHOUT_CHROMIUM,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const dataDir = await Deno.makeTempDir({ prefix: "keybound-console-" });
    const auth = await spawnAuthService({
      dataDir,
      args: ["--insecure-no-tls", "--cluster-name", "console.example"],
    });
    try {
      const admin = await parseIdentityFile(await Deno.readTextFile(`${dataDir}/admin-identity`));
      const api = new AdminApiClient({
        baseUrl: auth.url,
        signer: { certDer: admin.certDer, privateKey: admin.privateKey },
      });
      // Two bots joined by real tbot processes (their first join consumes one recovery).
      const botConfig = async (name: string) => {
        const secret = await provisionBot(api, name);
        const config = `${dataDir}/${name}.yaml`;
        await Deno.writeTextFile(
          config,
          tbotYaml({
            address: auth.url,
            storage: `${dataDir}/${name}-storage`,
            secret,
            extra: "insecure: true",
          }).replace("token: example", `token: ${name}`),
        );
        return config;
      };
      const [example, second] = await Promise.all([botConfig("example"), botConfig("second")]);
      const joins = await Promise.all(
        [example, second].map((c) => runTbot(["start", "-c", c, "--oneshot"])),
      );
      for (const j of joins) assertEquals(j.code, 0, j.stderr);
      await api.put({
        kind: "lock",
        version: "v2",
        metadata: { name: "preexisting" },
        spec: { target: { join_token: "nonexistent" }, message: "made by tctl" },
      }, "create");

      // tctl web enroll prints the one-time URL.
      const printed = await tctl(dataDir, ["web", "enroll", "--ttl", "5m", "--label", "ci"]);
      const url = /(http:\/\/\S+\/web\/#enroll=\S+)/.exec(printed)?.[1];
      assert(url, printed);
      const browserId = /tctl web rm ([0-9a-f]{16})/.exec(printed)?.[1];
      assert(browserId, printed);

      const profile = await Deno.makeTempDir({ prefix: "keybound-console-profile-" });
      let browser = await launchChromium(profile);
      try {
        let page = await browser.newPage();
        await page.goto(url);
        await page.waitForSelector('main[data-page="bots"] table#bots', { timeout: 20_000 });
        // The code left the address bar; the page names this browser.
        assertEquals(new URL(page.url()).hash, "#/bots");
        assertStringIncludes(await page.textContent("#whoami") ?? "", `web-${browserId}`);
        const bots = await rows(page, "bots");
        assertEquals(bots.map((r) => [r[0], r[2]]), [["example", "show"], ["second", "show"]]);
        await page.screenshot({ path: `${ARTIFACTS}/bots.png`, fullPage: true });

        // The key is a non-extractable CryptoKey in IndexedDB.
        const exported = await page.evaluate(EXPORT_STORED_KEY) as string[];
        assertEquals(exported, ["false", "InvalidAccessError", "InvalidAccessError"]);

        // Reload, then a fresh browser process on the same profile: still signed in.
        await page.reload();
        await page.waitForSelector("table#bots", { timeout: 20_000 });
        await browser.close();
        browser = await launchChromium(profile);
        page = await browser.newPage();
        await page.goto(`${auth.url}/web/`);
        await page.waitForSelector("table#bots", { timeout: 20_000 });

        // Every page shows the live cluster.
        await openPage(page, "instances", "instances");
        const instances = await rows(page, "instances");
        assertEquals(instances.length, 2);
        for (const r of instances) {
          assertEquals(r[2], Deno.hostname(), `hostname of ${r[0]}`);
          assertMatch(r[3], /\d/);
          assertEquals(r[6], "1", "generation");
          assertEquals(r[7], "healthy");
        }
        // Paging: one bot per page, by the URL; the next page, then back to the first.
        await page.evaluate(() => (location.hash = "#/bots?limit=1"));
        await waitUntil(
          async () => (await rows(page, "bots")).length === 1,
          "a page of one bot",
          SLOW,
        );
        assertEquals((await rows(page, "bots"))[0][0], "example");
        await page.click("#bots-next");
        await waitUntil(
          async () => (await rows(page, "bots"))[0]?.[0] === "second",
          "page two",
          SLOW,
        );
        assert(!(await page.$("#bots-next")), "no page after the last");
        await page.click("#bots-first");
        await waitUntil(
          async () => (await rows(page, "bots"))[0]?.[0] === "example",
          "page one",
          SLOW,
        );
        await page.evaluate(() => (location.hash = "#/bots"));
        await waitUntil(async () => (await rows(page, "bots")).length === 2, "both bots", SLOW);
        // A bot's instances.
        await page.click("table#bots tbody tr:nth-child(2) a");
        await page.waitForSelector(
          'main[data-page="instances"] h2:has-text("Instances of bot second")',
        );
        assertEquals((await rows(page, "instances")).map((r) => r[0]), ["second"]);
        await openPage(page, "tokens", "tokens");
        const tokens = await rows(page, "tokens");
        assertEquals(tokens.map((r) => [r[0], r[1], r[2], r[3]]), [
          ["example", "example", "standard", "1/1"],
          ["second", "second", "standard", "1/1"],
        ]);
        for (const r of tokens) {
          assertMatch(r[4], /^\d{4}-/, "last recovery");
          assertMatch(r[5], /^ssh-ed25519 …/, "bound key");
        }
        // Request a keypair rotation from the console.
        await page.click("table#tokens tbody tr:first-child button");
        await page.waitForSelector("#status:has-text('rotation requested')");
        assert((await api.get("token", "example")).spec.bound_keypair.rotate_after);

        await openPage(page, "ca", "ca");
        const ca = Object.fromEntries((await rows(page, "ca")).map(([k, v]) => [k, v]));
        assertEquals(ca.cluster_name, "console.example");
        assertEquals(ca.ca_pin, auth.caPin);
        // Each CA's rotation state, as /v1/status reports it (none is rotating here).
        const cas = await rows(page, "cas");
        assert(cas.some((r) => r[0] === "user"), `CAs shown: ${cas.map((r) => r[0])}`);
        for (const r of cas) assertEquals(r[1], "standby", `phase of the ${r[0]} CA`);
        // The signing keys' pins are the pins tbot and tctl compare (Teleport's SPKI pin).
        assertEquals(cas.find((r) => r[0] === "host")?.[3], ca.ca_pin);
        assertEquals(cas.find((r) => r[0] === "user")?.[3], ca["ca_pins.user"]);

        await openPage(page, "audit", "audit");
        const audit = await rows(page, "audit");
        const types = new Set(audit.map((r) => r[1]));
        for (const t of ["bot.join", "web.enrolled", "web.enrollment_created", "lock.created"]) {
          assert(types.has(t), `audit shows ${t}: ${[...types]}`);
        }
        const renewals = await page.$$eval(
          "#renewals-chart rect",
          (rs) => rs.reduce((n, r) => n + Number(r.getAttribute("data-value")), 0),
        );
        assertEquals(renewals, 2, "two bot.join events plotted");
        await page.selectOption("#audit-type", "bot.join");
        await waitUntil(
          () => page.url().endsWith("#/audit?type=bot.join"),
          "the filter's URL",
          SLOW,
        );
        await waitUntil(
          async () => (await rows(page, "audit")).every((r) => r[1] === "bot.join"),
          "the audit table to show only bot.join",
          SLOW,
        );
        assertEquals((await rows(page, "audit")).length, 2);

        // A lock made in the console refuses the bot's next join.
        await openPage(page, "locks", "locks");
        assertEquals((await rows(page, "locks")).map((r) => [r[0], r[1], r[2]]), [
          ["preexisting", "join_token=nonexistent", "made by tctl"],
        ]);
        await page.selectOption("#lock-form select[name=kind]", "user");
        await page.fill("#lock-form input[name=value]", "bot-example");
        await page.fill("#lock-form input[name=message]", "compromised host <b>x</b>");
        await page.click("#lock-form button[type=submit]");
        await waitUntil(
          async () => (await rows(page, "locks")).length === 2,
          "the console's lock to be listed",
          SLOW,
        );
        const made = (await rows(page, "locks")).find((r) => r[1] === "user=bot-example");
        assert(made, "console lock listed");
        assertEquals(made[2], "compromised host <b>x</b>", "shown as text, not markup");
        assertEquals(made[4], `web-${browserId}`, "created by this browser");
        await page.screenshot({ path: `${ARTIFACTS}/locks.png`, fullPage: true });
        const refused = await runTbot(["start", "-c", example, "--oneshot"]);
        assert(refused.code !== 0, "the locked bot's join must fail");
        assertStringIncludes(refused.stderr, "LOCKED");
        // The refusal is counted as a join failure and plotted by its code.
        await openPage(page, "audit", "audit");
        const lockedFailures = await page.$$eval(
          '#failures-chart rect[data-label="LOCKED"]',
          (rs) => rs.map((r) => Number(r.getAttribute("data-value"))),
        );
        assertEquals(lockedFailures, [1], "one LOCKED failure plotted");
        const lockEvent = (await rows(page, "audit")).find((r) => r[1] === "lock.created");
        assertStringIncludes(
          lockEvent?.[3] ?? "",
          "bot-example",
          "the lock event names its target",
        );
        const locked = await page.evaluate(() => (location.hash = "#/instances"));
        assertEquals(locked, "#/instances");
        await page.waitForSelector('main[data-page="instances"] table#instances');
        const health = (await rows(page, "instances")).map((r) => [r[0], r[7]]).sort();
        assertEquals(health, [["example", "locked"], ["second", "healthy"]]);

        // Removing it in the console lets the bot join again.
        await openPage(page, "locks", "locks");
        await page.click('table#locks tbody tr:has(td:text-is("user=bot-example")) button');
        await waitUntil(
          async () => (await rows(page, "locks")).length === 1,
          "the lock removed",
          SLOW,
        );
        const rejoined = await runTbot(["start", "-c", example, "--oneshot"]);
        assertEquals(rejoined.code, 0, rejoined.stderr);

        await openPage(page, "browsers", "browsers");
        assertEquals((await rows(page, "browsers")).map((r) => [r[0], r[1]]), [[browserId, "ci"]]);

        // An unenrolled profile is refused (401), and the used code does not work twice.
        const other = await launchChromium();
        try {
          const p2 = await other.newPage();
          await p2.goto(`${auth.url}/web/`);
          await p2.waitForSelector("#signed-out");
          const status = await p2.evaluate(async () => (await fetch("/v1/resources/bot")).status);
          assertEquals(status, 401);
          await p2.goto(url);
          await p2.waitForSelector("main:has-text('ENROLLMENT_CODE_INVALID')");
          // Enrolled with a code of its own, it signs out: revoked on the server, key gone here.
          const own = await api.createEnrollment({});
          await p2.goto("about:blank");
          await p2.goto(`${auth.url}/web/#enroll=${own.code}`);
          await p2.waitForSelector("table#bots");
          assert((await api.browsers()).some((b) => b.id === own.browser_id));
          await p2.click("#sign-out");
          await p2.waitForSelector("main:has-text('this browser is revoked and its key deleted')");
          assert(!(await api.browsers()).some((b) => b.id === own.browser_id));
          await p2.reload();
          await p2.waitForSelector("main:has-text('This browser holds no console key')");
        } finally {
          await other.close();
        }

        // tctl web rm: the browser is refused at its next call.
        assertStringIncludes(await tctl(dataDir, ["web", "ls"]), browserId);
        await tctl(dataDir, ["web", "rm", browserId]);
        await page.evaluate(() => (location.hash = "#/bots"));
        await page.waitForSelector("#signed-out", { timeout: 20_000 });
        assertStringIncludes(await page.textContent("main") ?? "", "BROWSER_REVOKED");
        await page.screenshot({ path: `${ARTIFACTS}/revoked.png`, fullPage: true });
        const pageErrors = browser.errors.filter((e) => !/status of 40[13]/.test(e));
        assertEquals(pageErrors, [], "no page errors (CSP violations included)");
      } finally {
        await browser.close();
        await Deno.remove(profile, { recursive: true });
      }
    } finally {
      await auth.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
