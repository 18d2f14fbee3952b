/**
 * Test page: a first join and refresh over `fetch` against an auth service on
 * another origin. The test calls `globalThis.keyboundJoin(authUrl, token,
 * secret)`; it resolves to "joined" or to the error's code and message.
 *
 * @module
 */
import { joinThenRefresh } from "../conformance/core_cases.ts";

async function join(baseUrl: string, tokenName: string, secret: string): Promise<string> {
  try {
    await joinThenRefresh({ baseUrl, tokenName, secret });
    return "joined";
  } catch (e) {
    return `${(e as { code?: string }).code ?? "no code"}: ${(e as Error).message}`;
  }
}

Object.assign(globalThis, { keyboundJoin: join });
