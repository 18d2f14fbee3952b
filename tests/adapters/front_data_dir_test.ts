/**
 * The data directory is checked at every start, whatever the TLS mode and
 * wherever the front's socket goes, made without following a link or taking
 * a directory someone else made, and chmod'ed or written only once its whole
 * path passed the walk (review-front2 M1, M2, S1 of session 12; the tests
 * R1-R3 are the reviewer's, each failed on 3765138). Real `auth start`
 * processes as root; the other user is a real process of `nobody` (setpriv,
 * python3). fs.protected_symlinks need not be on: the service refuses
 * another user's link itself.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { asNobody, authCommand, cannotAttack, filesIn, NOBODY, refusedStart } from "./_front.ts";
import { authStartCommand, spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { checkDataDir, takeDataDir } from "../../runtime-adapters/deno/data_dir_checks.ts";

/**
 * Runs `auth start` (TLS unless `args` say otherwise) for `data` until it
 * listens (then SIGTERM) or exits: its exit code, and whether it served.
 */
async function startOnce(data: string, args: string[] = []) {
  const [program, ...rest] = authStartCommand({ dataDir: data, args });
  const p = new Deno.Command(program, {
    args: rest,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let out = "";
  for await (const chunk of p.stdout.pipeThrough(new TextDecoderStream())) {
    out += chunk;
    if (out.includes("listening on")) p.kill("SIGTERM");
  }
  return { code: (await p.status).code, served: out.includes("listening on") };
}

/** As nobody: makes and removes its own directory at argv[1] until root chmods one (then keeps it). */
const FLIP = `
import os, sys, time
victim = sys.argv[1]
end = time.time() + 120
while time.time() < end:
    try: os.mkdir(victim, 0o755)
    except FileExistsError: pass
    try: st = os.lstat(victim)
    except FileNotFoundError: continue
    if st.st_uid == os.getuid() and (st.st_mode & 0o777) != 0o755: break
    try: os.rmdir(victim)
    except FileNotFoundError: pass
    except OSError: break
`;

/**
 * `parent` (made, root's, 0755) / `kb`: nobody's, 0755, holding the empty
 * `keybound.kv` (0666) its owner planted: an empty file is a new database
 * to SQLite, and root's SQLite keeps the file's owner.
 */
async function theirDataDir(parent: string): Promise<{ data: string; kv: string }> {
  await Deno.mkdir(parent, { recursive: true });
  await Deno.chmod(parent, 0o755);
  const data = join(parent, "kb");
  await Deno.mkdir(data);
  await Deno.chmod(data, 0o755);
  await Deno.chown(data, NOBODY, NOBODY);
  const kv = join(data, "keybound.kv");
  await Deno.writeFile(kv, new Uint8Array());
  await Deno.chmod(kv, 0o666);
  await Deno.chown(kv, NOBODY, NOBODY);
  return { data, kv };
}

/** What a start left of `theirDataDir`'s: its mode, the KV file's size, the names in it. */
async function leftOf({ data, kv }: { data: string; kv: string }) {
  return {
    mode: (await Deno.stat(data)).mode! & 0o777,
    kvBytes: (await Deno.stat(kv)).size,
    files: filesIn(data),
  };
}

/** `theirDataDir`'s as it was made. */
const UNTOUCHED = { mode: 0o755, kvBytes: 0, files: ["keybound.kv"] };

Deno.test({
  name:
    "auth start (review-front2 R1): a --data-dir made by the start in a sticky directory: never one another user made meanwhile is chmod'ed or written",
  ignore: ignoreUnless("the race as nobody", cannotAttack()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf2-race-" });
    try {
      await Deno.chmod(dir, 0o1777);
      await Deno.writeTextFile(join(dir, "flip.py"), FLIP);
      const taken: string[] = [];
      // About 1 start in 10 lost the race before the fix: 30 starts miss it with odds of about 4%.
      for (let i = 0; i < 30 && taken.length === 0; i++) {
        const data = join(dir, `kb${i}`);
        const flipper = asNobody(["/usr/bin/python3", join(dir, "flip.py"), data], {
          stdout: "null",
          stderr: "null",
        }).spawn();
        try {
          await startOnce(data);
        } finally {
          try {
            flipper.kill();
          } catch { /* gone */ }
          await flipper.status;
        }
        const info = await Deno.lstat(data).catch(() => undefined);
        if (info?.uid === NOBODY && ((info.mode! & 0o777) !== 0o755 || filesIn(data).length > 0)) {
          taken.push(
            `${data}: nobody's, mode ${(info.mode! & 0o777).toString(8)}, ` +
              `holding root's ${filesIn(data).join(", ")}`,
          );
        }
      }
      assertEquals(taken, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start (review-front2 R2): a --data-dir that is another user's link in a sticky directory: the root directory it names is neither chmod'ed nor written",
  ignore: ignoreUnless("a link of nobody's", cannotAttack()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf2-link-" });
    try {
      await Deno.chmod(dir, 0o755);
      const sticky = join(dir, "tmp");
      await Deno.mkdir(sticky);
      await Deno.chmod(sticky, 0o1777);
      // Root's, 0755: stands for /etc or /usr.
      const victim = join(dir, "etc");
      await Deno.mkdir(victim);
      await Deno.chmod(victim, 0o755);
      await Deno.writeTextFile(join(victim, "passwd"), "root:x:0:0::/root:/bin/sh\n");
      const data = join(sticky, "kb");
      assertEquals((await asNobody(["ln", "-s", victim, data]).output()).code, 0);
      const out = await refusedStart(data, {});
      assertEquals(
        { ...out, mode: (await Deno.stat(victim)).mode! & 0o777, files: filesIn(victim) },
        {
          code: 1,
          stderr: `auth: error [CONFIG_INVALID]: --data-dir ${data} is a symbolic link of uid ` +
            `${NOBODY}, not of root or this process's uid 0: auth follows only links root or ` +
            "this user made; use the directory it names, or a link of root's or this user's\n",
          mode: 0o755,
          files: ["passwd"],
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

for (
  const [name, prefix, path, args] of [
    [
      "auth start (review-front2 R3): as root, a --data-dir over 64 bytes that another user owns is refused, before its chmod and before the KV file in it is opened",
      "kb-rf2-long-",
      // The socket would go to /run/keybound: the line names what the data directory holds.
      (dir: string) => join(dir, "a-rather-long-directory-name-for-the-keybound-data"),
      [],
    ],
    [
      "auth start --insecure-no-tls: a --data-dir another user owns is refused in one line, before its chmod and before the KV file in it is opened",
      "kb-rf2-insecure-",
      // No front, no socket: the data directory still holds the CA keys (review-front2 M1),
      // and the line names no socket (it did until session 13).
      (dir: string) => dir,
      ["--insecure-no-tls"],
    ],
  ] as const
) {
  Deno.test({
    name,
    ignore: ignoreUnless("a data directory of nobody's", cannotAttack()),
    async fn() {
      const dir = await Deno.makeTempDir({ prefix });
      try {
        await Deno.chmod(dir, 0o755);
        const theirs = await theirDataDir(path(dir));
        const out = await refusedStart(theirs.data, {}, [...args]);
        assertEquals({ ...out, ...await leftOf(theirs) }, {
          code: 1,
          stderr: `auth: error [CONFIG_INVALID]: --data-dir ${theirs.data} must be a directory ` +
            "that only root or this user may change, since it holds the cluster's CA keys: it " +
            `is owned by uid ${NOBODY}, not by root or this process's uid 0: use a --data-dir ` +
            "whose directories, up to /, only root or this user may write (or fix the owner or " +
            "mode named)\n",
          ...UNTOUCHED,
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "auth start --insecure-no-tls: a --data-dir in a directory of this user's, and one made in the sticky /tmp, still serve",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // The walk applies without TLS too: the layouts tests and operators use must still pass.
    const dir = await Deno.makeTempDir({ prefix: "kb-rf2-insecure-" });
    const fresh = `/tmp/kb-rf2-fresh-${crypto.randomUUID().slice(0, 8)}`;
    try {
      for (const data of [join(dir, "a", "kb"), fresh]) {
        const auth = await spawnAuthService({ dataDir: data, args: ["--insecure-no-tls"] });
        try {
          const ping = await fetch(`${auth.url}/v1/ping`);
          assertEquals(ping.status, 200);
          await ping.body?.cancel();
          assertEquals((await Deno.stat(data)).mode! & 0o777, 0o700);
        } finally {
          assertEquals(await auth.stop(), 0);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(fresh, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "auth start --storage FILE: a KV file below a directory another user owns, or a file of theirs, is refused in one line before it is opened",
  ignore: ignoreUnless("files of nobody's", cannotAttack()),
  async fn() {
    // The KV file holds the CA keys wherever --storage puts it: checked as the data directory is.
    const dir = await Deno.makeTempDir({ prefix: "kb-storage-" });
    try {
      await Deno.chmod(dir, 0o755);
      const theirs = await theirDataDir(join(dir, "theirs"));
      const root = join(dir, "root");
      await Deno.mkdir(root, { mode: 0o755 });
      const planted = join(root, "state.kv");
      await Deno.writeFile(planted, new Uint8Array());
      await Deno.chmod(planted, 0o666);
      await Deno.chown(planted, NOBODY, NOBODY);
      const data = join(dir, "data");
      const start = (kv: string) => refusedStart(data, {}, ["--insecure-no-tls", "--storage", kv]);
      assertEquals(
        {
          below: await start(theirs.kv),
          file: await start(planted),
          theirs: await leftOf(theirs),
          planted: (await Deno.stat(planted)).size,
          dataMade: filesIn(dir).includes("data"),
        },
        {
          below: {
            code: 1,
            stderr: `auth: error [CONFIG_INVALID]: --storage ${theirs.kv}: ${theirs.data}, on ` +
              "its path, must be a directory that only root or this user may change, since the " +
              `Deno KV file below it holds the cluster's CA keys: it is owned by uid ${NOBODY}, ` +
              "not by root or this process's uid 0: use a --storage whose directories, up to /, " +
              "only root or this user may write (or fix the owner or mode named)\n",
          },
          file: {
            code: 1,
            stderr: `auth: error [CONFIG_INVALID]: --storage ${planted} must be this user's ` +
              `file, since it holds the cluster's CA keys: it is owned by uid ${NOBODY}, not by ` +
              "this process's uid 0: use a file of this user's (or chown it, if it is yours to " +
              "give)\n",
          },
          theirs: UNTOUCHED,
          planted: 0,
          dataMade: false,
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start --storage FILE: a KV file of this user's, named through a link of its own, serves",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-storage-" });
    try {
      await Deno.mkdir(join(dir, "state"));
      await Deno.symlink(join(dir, "state"), join(dir, "link"));
      const auth = await spawnAuthService({
        dataDir: join(dir, "data"),
        args: ["--insecure-no-tls", "--storage", join(dir, "link", "cluster.kv")],
      });
      try {
        const ping = await fetch(`${auth.url}/v1/ping`);
        assertEquals(ping.status, 200);
        await ping.body?.cancel();
      } finally {
        assertEquals(await auth.stop(), 0);
      }
      // Opened by its real path: the file is in the directory the link names.
      assertEquals(filesIn(join(dir, "state")).includes("cluster.kv"), true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** As nobody: makes each file named in argv[1:] (0666) and holds it open; on a stdin line, says whether any now holds the cluster's rows. */
const PLANT = `
import os, sys
fds = []
for p in sys.argv[1:]:
    fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o666); os.fchmod(fd, 0o666); fds.append(fd)
print("planted", flush=True)
sys.stdin.readline()
print(any(b"key_pkcs8" in os.pread(fd, 1 << 22, 0) for fd in fds), flush=True)
`;

/** Plants `files` as nobody, runs `auth start` with `flags` to its exit (SIGTERM once it listens); whether it served and whether nobody read the cluster through its planted files. */
async function plantThenStart(files: string[], flags: string[]) {
  const nobody = asNobody(["/usr/bin/python3", "-c", PLANT, ...files], {
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = nobody.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  while (!said.includes("planted\n")) said += (await lines.read()).value ?? "";
  const { served } = await startOnce(flags[0], flags.slice(1));
  const w = nobody.stdin.getWriter();
  await w.write(new TextEncoder().encode("go\n"));
  await w.close();
  said = "";
  for (;;) {
    const { value, done } = await lines.read();
    if (done) break;
    said += value;
  }
  await nobody.status;
  return { served, nobodyReadTheCluster: said.trim() === "True" };
}

Deno.test({
  name:
    "auth start --storage FILE in a sticky directory: a FILE-wal another user planted there first does not get the cluster (review-front3 M1)",
  ignore: ignoreUnless("files of nobody's", cannotAttack()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf3-side-" });
    try {
      await Deno.chmod(dir, 0o755);
      const sticky = join(dir, "st");
      await Deno.mkdir(sticky);
      await Deno.chmod(sticky, 0o1777); // as /tmp: passes pathComponentFault
      const kv = join(sticky, "cluster.kv");
      const got = await plantThenStart([`${kv}-wal`], [
        join(dir, "data"),
        "--insecure-no-tls",
        "--storage",
        kv,
      ]);
      // Refusing the start, or a KV whose companions nobody can have opened, both pass.
      assertEquals(got.nobodyReadTheCluster, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start: a --data-dir that is itself a sticky 1777 directory (as /tmp) is neither chmod'ed nor used with the files another user planted in it (review-front3 M2)",
  ignore: ignoreUnless("files of nobody's", cannotAttack()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf3-sdd-" });
    try {
      await Deno.chmod(dir, 0o755);
      const data = join(dir, "tmp");
      await Deno.mkdir(data);
      await Deno.chmod(data, 0o1777);
      const got = await plantThenStart([join(data, "keybound.kv"), join(data, "keybound.kv-wal")], [
        data,
        "--insecure-no-tls",
      ]);
      assertEquals({ ...got, mode: (await Deno.stat(data)).mode! & 0o7777 }, {
        served: false,
        nobodyReadTheCluster: false,
        mode: 0o1777,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "takeDataDir makes nothing through another user's link put at a missing component after checkDataDir (review-front3 S1)",
  ignore: ignoreUnless("a link of nobody's", cannotAttack()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf3-mk-" });
    try {
      await Deno.chmod(dir, 0o755);
      const sticky = join(dir, "t");
      const victim = join(dir, "etc"); // root's, 0755: stands for /etc
      await Deno.mkdir(sticky);
      await Deno.chmod(sticky, 0o1777);
      await Deno.mkdir(victim);
      await Deno.chmod(victim, 0o755);
      const given = join(sticky, "kb", "data");
      const real = checkDataDir(given, true); // t/kb is missing here: nothing to judge yet
      // nobody, between the check and the make (a race in life; here in order):
      const ln = await asNobody(["/bin/ln", "-s", victim, join(sticky, "kb")]).output();
      assertEquals(ln.code, 0);
      const refused = await takeDataDir(given, real, true).then(() => false, () => true);
      assertEquals({ refused, inVictim: filesIn(victim) }, { refused: true, inVictim: [] });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start: a first start with --storage inside the --data-dir it makes serves (review-front3 S2)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf3-inside-" });
    try {
      const data = join(dir, "data");
      const auth = await spawnAuthService({
        dataDir: data,
        args: ["--insecure-no-tls", "--storage", join(data, "cluster.kv")],
      });
      try {
        const ping = await fetch(`${auth.url}/v1/ping`);
        assertEquals(ping.status, 200);
        await ping.body?.cancel();
      } finally {
        assertEquals(await auth.stop(), 0);
      }
      assertEquals(filesIn(data).includes("cluster.kv"), true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth start --storage FILE in a missing directory: refused in one line before the data directory is made",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-storage-none-" });
    try {
      const data = join(dir, "data");
      // Outside the data directory, and inside it below a directory the start does not make.
      for (const kv of [join(dir, "none", "kb.kv"), join(data, "none", "kb.kv")]) {
        const out = await refusedStart(data, {}, ["--insecure-no-tls", "--storage", kv]);
        assertEquals({ ...out, left: filesIn(dir) }, {
          code: 1,
          stderr: `auth: error [CONFIG_INVALID]: --storage ${kv}: its directory ` +
            `${join(kv, "..")} does not exist: make it (mode 0700), or name a file in a ` +
            "directory that does\n",
          left: [],
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "auth admin-identity: a --data-dir another user owns is refused in one line, nothing opened or written (review-front3 S3)",
  ignore: ignoreUnless("a data directory of nobody's", cannotAttack()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf3-admin-" });
    try {
      const theirs = await theirDataDir(dir);
      const out = await authCommand(theirs.data, ["admin-identity", "--data-dir", theirs.data])
        .output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals({ code: out.code, lines: stderr.split("\n").length, ...await leftOf(theirs) }, {
        code: 1,
        lines: 2,
        ...UNTOUCHED,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A cluster in `kv` (a Deno KV file): one `auth start --insecure-no-tls` until it listens. */
async function seed(data: string, kv: string): Promise<void> {
  await startOnce(data, [
    "--storage",
    kv,
    "--insecure-no-tls",
    "--cluster-name",
    "rf4.example.com",
  ]);
  assertEquals(Deno.lstatSync(kv).isFile, true);
}

/** As nobody: waits until root opens argv[1] (inotify IN_OPEN on its directory), then makes argv[2] 0777. */
const MAKE_ON_OPEN = `
import ctypes, os, struct, sys, time
kv, d = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = libc.inotify_init()
libc.inotify_add_watch(fd, os.path.dirname(kv).encode(), 0x20)
print("watching", flush=True)
seen = False
while not seen:
    buf = os.read(fd, 4096); i = 0
    while i < len(buf):
        wd, mask, cookie, n = struct.unpack_from("iIII", buf, i)
        name = buf[i + 16:i + 16 + n].rstrip(b"\\0").decode(); i += 16 + n
        if name == os.path.basename(kv): seen = True
try:
    os.mkdir(d); os.chmod(d, 0o777); print("made", flush=True)
    for _ in range(500):
        if os.path.exists(d + "/admin-identity"): break
        time.sleep(0.01)
except OSError as e:
    print("not made", e.errno)
`;

Deno.test({
  name:
    "auth admin-identity: a --data-dir another user makes while the cluster is open gets no admin identity (review-front4 M1)",
  ignore: ignoreUnless("nobody's process", cannotAttack()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kb-rf4-admin-" });
    try {
      await Deno.chmod(dir, 0o755);
      const sticky = join(dir, "tmp");
      await Deno.mkdir(sticky);
      await Deno.chmod(sticky, 0o1777); // stands for /tmp
      const kvDir = join(dir, "kv");
      await Deno.mkdir(kvDir);
      await Deno.chmod(kvDir, 0o755);
      const kv = join(kvDir, "keybound.kv");
      await seed(join(dir, "d0"), kv);
      const data = join(sticky, "kb");
      const nobody = asNobody(["/usr/bin/python3", "-c", MAKE_ON_OPEN, kv, data], {
        stdout: "piped",
        stderr: "null",
      }).spawn();
      // Root starts once nobody watches.
      const reader = nobody.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let saw = (await reader.read()).value ?? "";
      const out = await authCommand(data, ["admin-identity", "--data-dir", data, "--storage", kv])
        .output();
      for (let r = await reader.read(); !r.done; r = await reader.read()) saw += r.value;
      await nobody.status;
      const info = Deno.lstatSync(data);
      const written = (() => {
        try {
          Deno.lstatSync(join(data, "admin-identity"));
          return true;
        } catch {
          return false;
        }
      })();
      // Either refused, or written into a directory of root's that nobody could make.
      assertEquals({ identityInNobodysDir: written && info.uid === NOBODY }, {
        identityInNobodysDir: false,
      }, `${saw} ${new TextDecoder().decode(out.stderr)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
