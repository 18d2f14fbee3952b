/**
 * Example browser bot page. Its settings come from the URL fragment (never
 * sent to any server): `#auth=URL&token=NAME&secret=REGISTRATION_SECRET`; the
 * secret is needed only for the first join. It shows the bot's health,
 * identity and log; `globalThis.keyboundBot` is the running bot.
 *
 * @module
 */
import { type BrowserBot, startBrowserBot } from "../bot.ts";
import { createLogger } from "../../../src/util/log.ts";
import { browser, type PageElement } from "../web_types.ts";

const params = new URLSearchParams(location.hash.slice(1));
const element = (id: string): PageElement => browser().document.getElementById(id)!;
const status = element("status");
const logView = element("log");

function show(state: string, text: string): void {
  status.dataset.state = state;
  status.textContent = text;
}

function render(bot: BrowserBot): void {
  const s = bot.status();
  if (s.identity) {
    element("instance").textContent = s.identity.botInstanceId;
    element("generation").textContent = String(s.identity.generation);
    element("expires").textContent = s.identity.notAfter.toISOString();
  }
  if (s.status === "healthy") show("ready", `bot ${s.identity?.botName} holds a valid identity`);
  else show(s.status, s.reason ?? s.status);
}

// Log lines are shown as text, never as markup.
const log = createLogger({
  component: "browser-bot",
  write: (line) => {
    logView.append(line + "\n");
    console.log(line);
  },
});

try {
  const authUrl = params.get("auth");
  const tokenName = params.get("token");
  if (!authUrl || !tokenName) throw new Error("the page URL needs #auth=URL&token=NAME");
  show("starting", "joining…");
  const bot = await startBrowserBot({
    authUrl,
    tokenName,
    registrationSecret: params.get("secret") ?? undefined,
    log,
  });
  Object.assign(globalThis, { keyboundBot: bot });
  render(bot);
  setInterval(() => render(bot), 5_000);
} catch (e) {
  show("failed", `error: ${(e as Error).message}`);
}
