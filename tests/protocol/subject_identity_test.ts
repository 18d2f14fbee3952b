/**
 * identityFromSubject: the identity a certificate subject names, and the
 * first problem (in a fixed order) when it names none.
 */
import { assertEquals } from "../_assert.ts";
import {
  botSubject,
  identityFromSubject,
  isJoinSubject,
  outputSubject,
  SUBJECT_OIDS as O,
} from "../../src/protocol/subject.ts";

const bot = botSubject({
  botName: "b1",
  botInstanceId: "i-1",
  generation: 7,
  joinToken: "t1",
  roles: ["r1", "r2"],
});

Deno.test("identityFromSubject: a join certificate's subject, roles in order", () => {
  assertEquals(identityFromSubject(bot), {
    username: "bot-b1",
    roles: ["r1", "r2"],
    botName: "b1",
    botInstanceId: "i-1",
    joinToken: "t1",
    generation: 7,
  });
  assertEquals(isJoinSubject(bot), true);
  const output = outputSubject({ botName: "b1", joinToken: "t1" });
  assertEquals(identityFromSubject(output), {
    username: "bot-b1",
    roles: ["bot-b1"],
    botName: "b1",
    joinToken: "t1",
    usage: "output",
  });
  assertEquals(isJoinSubject(output), false);
});

Deno.test("identityFromSubject: the first problem, in order", () => {
  const cn = { oid: O.commonName, value: "bot-b1" };
  assertEquals(identityFromSubject([]), "certificate subject has no common name");
  assertEquals(
    identityFromSubject([{ oid: O.commonName, value: "" }]),
    "certificate subject has no common name",
  );
  assertEquals(
    identityFromSubject([cn, cn]),
    "certificate subject has more than one common name",
  );
  // A repeated bot name is reported before a repeated generation, wherever they sit.
  assertEquals(
    identityFromSubject([
      { oid: O.generation, value: "1" },
      { oid: O.generation, value: "2" },
      cn,
      { oid: O.botName, value: "a" },
      { oid: O.botName, value: "b" },
    ]),
    "certificate subject has more than one bot name",
  );
  assertEquals(
    identityFromSubject([cn, { oid: O.generation, value: "01" }]),
    "certificate generation is not a decimal number",
  );
  assertEquals(identityFromSubject([cn, { oid: "1.2.3.4", value: "x" }]), {
    username: "bot-b1",
    roles: [],
  });
});
