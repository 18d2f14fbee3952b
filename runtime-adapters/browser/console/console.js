// The console's entry: sign-in (enrollment from the URL fragment, or the key
// stored in IndexedDB), then one page per fragment route.
import { enroll, isSignedOut, resume, signOut } from "./client.js";
import { h, show } from "./dom.js";
import { botsPage, instancesPage, tokensPage } from "./fleet_pages.js";
import { auditPage, browsersPage, caPage, locksPage } from "./admin_pages.js";

const PAGES = {
  bots: botsPage,
  instances: instancesPage,
  tokens: tokensPage,
  locks: locksPage,
  audit: auditPage,
  ca: caPage,
  browsers: browsersPage,
};

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let session = null;

function signedOut(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("whoami").textContent = "";
  show(
    main,
    h("h2", { id: "signed-out" }, "Not signed in"),
    h("p", {}, message),
    h("p", {}, "An admin prints a one-time sign-in URL with: tctl web enroll"),
  );
}

/** Shows an error of a console call; a refusal of this browser signs it out. */
function reportError(err) {
  if (isSignedOut(err)) {
    session = null;
    signedOut(`The auth service refused this browser: [${err.code}] ${err.message}`);
    return;
  }
  statusLine.className = "error";
  statusLine.textContent = err?.code ? `[${err.code}] ${err.message}` : String(err);
}

/** Shows a short confirmation under the page. */
function reportDone(text) {
  statusLine.className = "";
  statusLine.textContent = text;
}

/** Shows the page the fragment names; `keepStatus` after an action that reported something. */
async function render(keepStatus = false) {
  if (!session) return;
  const name = (location.hash.match(/^#\/([a-z]+)/) ?? [])[1] ?? "bots";
  const page = PAGES[name] ?? botsPage;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("current", a.getAttribute("href") === `#/${name}`);
  }
  if (!keepStatus) statusLine.textContent = "";
  const ui = {
    /** Runs a change, then reports `text` and shows the page again, or reports the error. */
    async act(change, text) {
      try {
        await change();
        reportDone(text);
        await render(true);
      } catch (err) {
        reportError(err);
      }
    },
  };
  try {
    const content = await page(session.api, ui);
    show(main, content);
    main.dataset.page = name;
  } catch (err) {
    reportError(err);
  }
}

const ENROLL = /^#enroll=([0-9a-f]{16}\.[A-Za-z0-9_-]{43})$/;

async function start() {
  const m = location.hash.match(ENROLL);
  try {
    if (m) {
      // The code is single-use: drop it from the address bar and history first.
      history.replaceState(null, "", location.pathname + "#/bots");
      session = await enroll(m[1], navigator.userAgent);
    } else {
      session = await resume();
    }
  } catch (err) {
    signedOut(err?.code ? `[${err.code}] ${err.message}` : String(err));
    return;
  }
  if (!session) {
    signedOut("This browser holds no console key.");
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  document.getElementById("whoami").textContent =
    `Signed in as ${session.username} until ${session.expires}`;
  await render();
}

// Revokes this browser on the server (as tctl web rm does), then deletes the key here.
document.getElementById("sign-out").addEventListener("click", async () => {
  const ending = session;
  session = null;
  let note = "this browser is revoked and its key deleted.";
  try {
    await ending?.api.revokeBrowser(ending.browserId);
  } catch (err) {
    note = `its key is deleted here, but revoking it failed ([${err?.code}] ${err?.message}): ` +
      "ask an admin for tctl web rm.";
  }
  await signOut();
  signedOut(`Signed out: ${note}`);
});

// A pasted enrollment URL on an open console signs in again; anything else is a page.
addEventListener("hashchange", () => (ENROLL.test(location.hash) ? start() : render()));
start();
