/**
 * Functions the browser tests run inside pages with `page.evaluate`: each is
 * sent as its source text, so each is self-contained (types only are imported).
 *
 * @module
 */
import type { BrowserGlobals, IdbDatabase } from "../../runtime-adapters/browser/web_types.ts";

/** In the page: every stored private key refuses export; no file holds PEM key text. */
export function probeStoredKeys(): Promise<
  { keys: number; refusals: string[]; pemFiles: string[] }
> {
  return new Promise((resolve, reject) => {
    const open = (globalThis as unknown as BrowserGlobals).indexedDB.open("keybound-bot", 1);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db: IdbDatabase = open.result;
      const tx = db.transaction(["keys", "files"], "readonly");
      const all = (store: string) =>
        (tx.objectStore(store) as unknown as { getAll(): { result: unknown[] } }).getAll();
      const keys = all("keys");
      const files = all("files");
      tx.oncomplete = async () => {
        const refusals: string[] = [];
        for (const kp of keys.result as { privateKey: CryptoKey }[]) {
          for (
            const attempt of [
              () => crypto.subtle.exportKey("pkcs8", kp.privateKey),
              () => crypto.subtle.exportKey("jwk", kp.privateKey),
            ]
          ) {
            try {
              await attempt();
              refusals.push("exported");
            } catch (e) {
              refusals.push((e as Error).name);
            }
          }
        }
        const pemFiles = (files.result as Uint8Array[]).map((b) => new TextDecoder().decode(b))
          .filter((t) => t.includes("PRIVATE KEY"));
        db.close();
        resolve({ keys: keys.result.length, refusals, pemFiles });
      };
    };
  });
}

/** In the page: the bot's log shows a copy-detection refusal. */
export function logMentionsRefusal(): boolean {
  return /JOIN_STATE_INVALID|GENERATION_MISMATCH|LOCKED/.test(
    (globalThis as unknown as BrowserGlobals).document.getElementById("log")?.textContent ?? "",
  );
}
