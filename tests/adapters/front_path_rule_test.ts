/**
 * The rule every directory on the data directory's and the socket's path
 * must pass (OpenSSH's StrictModes; src/cli/auth/front_dir.ts
 * `pathComponentFault`), as a table over the pure function, and the claim
 * that an ACL granting write shows in the mode's group bits checked on a
 * real directory with setfacl (review-front2 S4).
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import {
  type DirFacts,
  notThisUsersRefused,
  ownerFault,
  pathComponentFault,
  privateDirFault,
} from "../../src/cli/auth/front_dir.ts";

const dir = (mode: number, uid: number): DirFacts => ({
  isDirectory: true,
  isSymlink: false,
  mode: 0o040000 | mode,
  uid,
});

const GROUP = "its group or an ACL entry (see getfacl) may write it, and it is not sticky";
const OTHERS = "other users may write it, and it is not sticky";

Deno.test("pathComponentFault: owner, group and other write, sticky, setgid, links and files", () => {
  const cases: [string, DirFacts, number, string | undefined][] = [
    ["root's 0755, for root", dir(0o755, 0), 0, undefined],
    ["root's 0755, for uid 1000 (/usr, /var)", dir(0o755, 0), 1000, undefined],
    ["its own 0700", dir(0o700, 1000), 1000, undefined],
    ["its own 0755", dir(0o755, 1000), 1000, undefined],
    [
      "another user's 0755, for root (a Docker volume of the host's uid)",
      dir(0o755, 1000),
      0,
      "it is owned by uid 1000, not by root or this process's uid 0",
    ],
    [
      "root's 0700, for uid 1000 (it may not be entered, but no one else may change it)",
      dir(0o700, 0),
      1000,
      undefined,
    ],
    ["root's 0777", dir(0o777, 0), 0, `its mode is 0777: ${OTHERS}`],
    ["root's 0757 (others only)", dir(0o757, 0), 0, `its mode is 0757: ${OTHERS}`],
    ["root's 0775", dir(0o775, 0), 0, `its mode is 0775: ${GROUP}`],
    ["root's 2775, setgid (Debian's /usr/local)", dir(0o2775, 0), 0, `its mode is 2775: ${GROUP}`],
    ["root's 1777, sticky (/tmp)", dir(0o1777, 0), 1000, undefined],
    ["root's 1775, sticky and group-writable", dir(0o1775, 0), 1000, undefined],
    ["root's 3777, sticky and setgid", dir(0o3777, 0), 0, undefined],
    [
      "another user's 1777: sticky does not excuse the owner",
      dir(0o1777, 1000),
      0,
      "it is owned by uid 1000, not by root or this process's uid 0",
    ],
    [
      "a symbolic link",
      { isDirectory: false, isSymlink: true, mode: 0o120777, uid: 0 },
      0,
      "it is a symbolic link",
    ],
    [
      "a file",
      { isDirectory: false, isSymlink: false, mode: 0o100644, uid: 0 },
      0,
      "it is not a directory",
    ],
  ];
  for (const [what, info, uid, fault] of cases) {
    assertEquals(pathComponentFault(info, uid), fault, what);
  }
});

/** Why setfacl cannot be used here (no tool, or a temporary directory without ACLs). */
function cannotSetAcl(): string | undefined {
  if (Deno.build.os !== "linux") return "Linux ACLs";
  const probe = Deno.makeTempDirSync({ prefix: "kb-front-acl-" });
  try {
    const out = new Deno.Command("/usr/bin/setfacl", { args: ["-m", "u:65534:rx", probe] })
      .outputSync();
    return out.code === 0 ? undefined : "setfacl refused: the temporary directory has no ACLs";
  } catch {
    return "needs /usr/bin/setfacl (the acl package)";
  } finally {
    Deno.removeSync(probe);
  }
}

Deno.test("ownerFault: the type and the owner, whatever the mode; privateDirFault: the mode too", () => {
  const link = { ...dir(0o777, 1000), isDirectory: false, isSymlink: true };
  const file = { ...dir(0o600, 1000), isDirectory: false };
  const cases: [DirFacts | undefined, string | undefined, string | undefined][] = [
    [undefined, "it does not exist", "it does not exist"],
    [link, "it is a symbolic link", "it is a symbolic link"],
    [file, "it is not a directory", "it is not a directory"],
    [dir(0o777, 1000), undefined, "its mode is 0777, not 0700"],
    [dir(0o755, 1000), undefined, undefined],
    [
      dir(0o700, 0),
      "it is owned by uid 0, not by this process's uid 1000",
      "it is owned by uid 0, not by this process's uid 1000",
    ],
    [
      dir(0o770, 0),
      "it is owned by uid 0, not by this process's uid 1000",
      "its mode is 0770, not 0700",
    ],
  ];
  for (const [info, owner, private_] of cases) {
    assertEquals(
      [ownerFault(info, 1000), privateDirFault(info, { uid: 1000 })],
      [owner, private_],
      JSON.stringify(info),
    );
  }
});

Deno.test("notThisUsersRefused: one wording for the data directory and the --storage file", () => {
  const fault = "it is owned by uid 0, not by this process's uid 1000";
  assertEquals(
    notThisUsersRefused("--data-dir", "/srv/kb", "/srv/kb", fault).message,
    "--data-dir /srv/kb must be this user's directory, since it holds the cluster's CA keys: " +
      `${fault}: use a directory of this user's (or chown it, if it is yours to give)`,
  );
  const refused = notThisUsersRefused(
    "--storage",
    "kb.kv",
    "/srv/kb.kv",
    "it is not a regular file",
  );
  assertEquals(
    [refused.code, refused.message, refused.details],
    [
      "CONFIG_INVALID",
      "--storage kb.kv (/srv/kb.kv) must be this user's file, since it holds the cluster's CA " +
      "keys: it is not a regular file: use a file of this user's (or chown it, if it is yours " +
      "to give)",
      { setting: "--storage", value: "kb.kv", component: "/srv/kb.kv" },
    ],
  );
});

Deno.test({
  name:
    "pathComponentFault on a real directory: an ACL entry granting write is refused, one capped by a read-only mask passes",
  ignore: ignoreUnless("ACL test", cannotSetAcl()),
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "kb-front-acl-" });
    try {
      const shared = join(base, "shared");
      await Deno.mkdir(shared);
      await Deno.chmod(shared, 0o755);
      const setfacl = async (...args: string[]) => {
        const out = await new Deno.Command("/usr/bin/setfacl", { args: [...args, shared] })
          .output();
        return out.code === 0 ? undefined : new TextDecoder().decode(out.stderr);
      };
      assertEquals(await setfacl("-m", "u:65534:rwx"), undefined);
      const facts = (): DirFacts => {
        const info = Deno.lstatSync(shared);
        return { ...info, mode: info.mode!, uid: info.uid! };
      };
      const uid = Deno.uid()!;
      // The mask (now rwx) is what st_mode shows as the group bits.
      assertEquals(pathComponentFault(facts(), uid), `its mode is 0775: ${GROUP}`);
      // The entry kept, its write masked: nobody's effective rights are r-x.
      assertEquals(await setfacl("-n", "-m", "m::rx"), undefined);
      assertEquals(pathComponentFault(facts(), uid), undefined);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start in a data directory whose default ACL grants another user rwx: nothing it makes there gives that user any right",
  ignore: ignoreUnless("ACL test", cannotSetAcl()),
  async fn() {
    // Not refused (docs/security.md): only the data directory's owner can set a default ACL,
    // and everything the service makes in it is created (or chmod'ed) without group or other
    // bits, which the mask of every inherited entry follows.
    const base = await Deno.makeTempDir({ prefix: "kb-front-dacl-" });
    try {
      const data = join(base, "data");
      await Deno.mkdir(data, { mode: 0o700 });
      const setfacl = await new Deno.Command("/usr/bin/setfacl", {
        args: ["-d", "-m", "u:65534:rwx", data],
      }).output();
      assertEquals(setfacl.code, 0);
      const auth = await spawnAuthService({ dataDir: data });
      let effective: string[];
      try {
        // While it runs: the KV file and its companions, admin-identity, auth-server, front/
        // with the socket and its lock file.
        const out = await new Deno.Command("/usr/bin/getfacl", {
          args: ["-R", "-p", "-n", data],
        }).output();
        effective = new TextDecoder().decode(out.stdout).split("\n\n").flatMap((entry) => {
          const file = /^# file: (.*)$/m.exec(entry)?.[1];
          const nobody = /^user:65534:rwx\t#effective:(.*)$/m.exec(entry)?.[1];
          return file && file !== data ? [`${file.slice(data.length + 1)} ${nobody}`] : [];
        });
      } finally {
        assertEquals(await auth.stop(), 0);
      }
      const names = effective.map((e) => e.split(" ")[0]);
      for (const name of ["keybound.kv", "keybound.kv-wal", "admin-identity", "front"]) {
        assertEquals(names.includes(name), true, `${name} not in ${names}`);
      }
      // The socket is made by bind(2), which applies the umask (0755 here: mask r-x): no
      // write, so no connect, and front/ itself gives no search right.
      const granted = effective.filter((e) => !/ ---$/.test(e) && !/\.sock r-x$/.test(e));
      assertEquals(granted, []);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
