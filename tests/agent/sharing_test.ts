import {
  aclText,
  type FileSharing,
  OutputSharing,
  SharedOutput,
} from "../../src/agent/sharing/mod.ts";
import { KeyboundError } from "../../src/errors.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { noopOutput as inner } from "./_noop_output.ts";

// The real setfacl and group paths are covered by tests/tbot/output_sharing_test.ts; this is the policy.
function noAclFs(calls: string[]): FileSharing {
  return {
    listFiles: () => Promise.resolve(["key", "tlscert"]),
    setAcl: () => Promise.resolve(false),
    setGroup: (path, group, mode) => {
      calls.push(`${path} ${group} ${mode.toString(8)}`);
      return Promise.resolve();
    },
  };
}

Deno.test("sharing: ACL entries give each reader read only, nothing to group and others", () => {
  assertEquals(
    aclText([{ user: "nginx" }, { group: "ssl" }], false),
    "u::rw-,g::---,o::---,m::r--,u:nginx:r--,g:ssl:r--",
  );
  assertEquals(aclText([{ user: "nginx" }], true), "u::rwx,g::---,o::---,m::r-x,u:nginx:r-x");
});

Deno.test("sharing: without ACLs a single group gets group ownership and 0640; anything else is refused", async () => {
  const calls: string[] = [];
  const sharing = new OutputSharing("app", [{ group: "ssl" }], {
    files: noAclFs(calls),
    log: silentLogger,
    directory: "/o",
  });
  const out = new SharedOutput(inner, sharing);
  await out.init();
  assertEquals(out.method, "group_0640");
  assertEquals(calls, ["/o ssl 750", "/o/key ssl 640", "/o/tlscert ssl 640"]);
  // A new file is shared by the destination before its rename.
  await sharing.shareFile("/o/.key.1234.tmp");
  assertEquals(calls.at(-1), "/o/.key.1234.tmp ssl 640");
  const user = new SharedOutput(
    inner,
    new OutputSharing("app", [{ user: "nginx" }], {
      files: noAclFs([]),
      log: silentLogger,
      directory: "/o",
    }),
  );
  const e = await assertRejects(() => user.init(), KeyboundError);
  assertEquals(e.code, "SHARING_FAILED");
  assertStringIncludes(e.message, "has no POSIX ACLs");
});
