import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { describeJoinFailure } from "../../src/agent/refusal.ts";
import { type ErrorCode, KeyboundError } from "../../src/errors.ts";

const ctx = { tokenName: "t1", server: "https://auth:3025", staticKey: false };

Deno.test("refusal advice is chosen by code: the same message gets different advice per code", () => {
  const cases: [ErrorCode, string][] = [
    ["JOIN_STATE_REQUIRED", "restore the storage directory"],
    ["JOIN_STATE_INVALID", "copied to another host"],
    ["TOKEN_STATE_CORRUPT", "delete and recreate token/t1"],
    ["ONBOARDING_WITH_CREDENTIALS", "delete the identity files"],
    ["STATIC_KEY_ROTATION", "unset spec.bound_keypair.rotate_after on token/t1"],
    ["TLS_UNTRUSTED", "onboarding.ca_pins"],
    ["CONNECTION_FAILED", "https://auth:3025 is running and reachable"],
  ];
  const seen = new Set<string>();
  for (const [code, advice] of cases) {
    const line = describeJoinFailure(new KeyboundError(code, "same text"), ctx);
    assertStringIncludes(line, `same text (${code}); `);
    assertStringIncludes(line, advice);
    seen.add(line);
  }
  assertEquals(seen.size, cases.length);
});

Deno.test("refusal: a static key without join state is told to use insecure mode", () => {
  const line = describeJoinFailure(
    new KeyboundError(
      "JOIN_STATE_REQUIRED",
      "previous join state is required but was not provided",
    ),
    { ...ctx, staticKey: true },
  );
  assertStringIncludes(line, "join refused: ");
  assertStringIncludes(line, "recovery.mode: insecure");
});
