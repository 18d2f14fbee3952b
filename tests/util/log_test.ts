import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { createLogger, escapeLogText, type LogFormat } from "../../src/util/log.ts";
import { ANSI_PAYLOAD, NEWLINE_PAYLOAD, RAW_CONTROL } from "./_payloads.ts";

const OTHERS =
  "del\x7f c1\x9b[31m nel\x85 ls\u2028 ps\u2029 rlo\u202e bom\ufeff lone\ud800 cr\r tab\t";

function lines(format: LogFormat, msg: string, fields: Record<string, unknown>): string[] {
  const out: string[] = [];
  const log = createLogger({
    format,
    component: "auth",
    write: (l) => out.push(l),
    now: () => new Date(0),
  });
  log.info(msg, fields);
  return out;
}

Deno.test("text log: control characters in values are escaped, and the value reads back exactly", () => {
  for (const payload of [ANSI_PAYLOAD, NEWLINE_PAYLOAD, OTHERS]) {
    const out = lines("text", "join failed", { token: payload, code: "NOT_FOUND" });
    assertEquals(out.length, 1);
    assert(!RAW_CONTROL.test(out[0]), `raw control character in ${JSON.stringify(out[0])}`);
    assertEquals(out[0].split("\n").length, 1);
    const quoted = /token=("(?:[^"\\]|\\.)*")/.exec(out[0])![1];
    assertEquals(JSON.parse(quoted), payload);
    assertStringIncludes(out[0], " code=NOT_FOUND");
  }
  assertStringIncludes(
    lines("text", "m", { token: ANSI_PAYLOAD })[0],
    String.raw`token="\u001b[2K\u001b[32mOK…\u001b]0;pwned\u0007"`,
  );
});

Deno.test("text log: the message is escaped too; keys are quoted when unsafe", () => {
  const [line] = lines("text", `bad ${NEWLINE_PAYLOAD} ${ANSI_PAYLOAD} back\\slash`, {
    "a key": "v",
  });
  assert(!RAW_CONTROL.test(line), line);
  assertStringIncludes(line, String.raw`bad x\n2026-12-01T00:00:00.000Z INFO`);
  assertStringIncludes(line, String.raw`\u0007 back\\slash`);
  assertStringIncludes(line, `"a key"=v`);
  assertEquals(escapeLogText("ok\n\x1b[2K"), String.raw`ok\n\u001b[2K`);
});

Deno.test("text log: safe values stay bare, others are quoted", () => {
  const [line] = lines("text", "m", {
    addr: "127.0.0.1:3025",
    empty: "",
    space: "a b",
    eq: "a=b",
    quote: 'a"b',
    accent: "é",
    n: 3,
    err: new Error("boom\x1b[31m"),
    obj: { k: "\x1b" },
    big: 10n,
  });
  assertEquals(
    line,
    String.raw`1970-01-01T00:00:00.000Z INFO  m component=auth addr=127.0.0.1:3025 empty="" ` +
      String.raw`space="a b" eq="a=b" quote="a\"b" accent="é" n=3 err="boom\u001b[31m" ` +
      String.raw`obj="{\"k\":\"\\u001b\"}" big=10`,
  );
});

Deno.test("JSON log: valid JSON, same values, and nothing a terminal would act on", () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  for (const payload of [ANSI_PAYLOAD, NEWLINE_PAYLOAD, OTHERS]) {
    const out = lines("json", `msg ${payload}`, { token: payload, err: new Error(payload) });
    assertEquals(out.length, 1);
    assert(!RAW_CONTROL.test(out[0]), out[0]);
    const obj = JSON.parse(out[0]);
    assertEquals(obj.token, payload);
    assertEquals(obj.err, payload);
    assertEquals(obj.msg, `msg ${payload}`);
  }
  const [line] = lines("json", "m", { circular, big: 1n });
  assertEquals(JSON.parse(line).big, "1");
  assertEquals(JSON.parse(line).circular, "[object Object]");
});
