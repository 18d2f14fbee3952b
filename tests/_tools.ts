/**
 * The Debian tools tests run for real, and what a test does when one is
 * missing: in CI (`CI=true`; `.ci/run` installs them all) it runs, and fails
 * if the tool is absent; elsewhere it is ignored, and says once which
 * package to install.
 *
 * @module
 */

/** The Debian package of each tool (as `.ci/run` installs it). */
export const DEBIAN_PACKAGE = {
  openssl: "openssl",
  "ssh-keygen": "openssh-client",
  ssh: "openssh-client",
  sshd: "openssh-server",
  jq: "jq",
  "systemd-analyze": "systemd",
  setfacl: "acl",
  getfacl: "acl",
  chromium: "chromium",
  haproxy: "haproxy",
} as const;

/** A tool tests run. */
export type Tool = keyof typeof DEBIAN_PACKAGE;

function onPath(tool: string): boolean {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"];
  return dirs.some((d) => {
    try {
      return d !== "" && Deno.statSync(`${d}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Why tests needing `tools` cannot run here (naming the packages), or undefined. */
export function missingTools(...tools: Tool[]): string | undefined {
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((t) => DEBIAN_PACKAGE[t]))];
  return `needs ${missing.join(", ")} (apt-get install ${packages.join(" ")})`;
}

/**
 * `ignore` for the tests of `what` that run `tools`: true only outside CI
 * with a tool missing, after one warning naming the package to install.
 *
 * @example
 * ```ts ignore
 * Deno.test("x509: openssl reads it", { ignore: ignoreWithout("x509 tests", "openssl") }, fn);
 * ```
 */
export function ignoreWithout(what: string, ...tools: Tool[]): boolean {
  return ignoreUnless(what, missingTools(...tools));
}

/** `ignore` for tests whose precondition `problem` names (undefined when met), warned once. */
export function ignoreUnless(what: string, problem: string | undefined): boolean {
  if (problem === undefined || Deno.env.get("CI") === "true") return false;
  const key = `${what}: ${problem}`;
  if (!warned.has(key)) {
    warned.add(key);
    console.warn(`ignored outside CI: ${what}: ${problem}`);
  }
  return true;
}

const warned = new Set<string>();

/**
 * Why tests that act as another user cannot run here, or undefined: they
 * need Linux, root (to make files of other users) and setpriv (util-linux,
 * to run a process as one).
 */
export function cannotActAsOthers(): string | undefined {
  if (Deno.build.os !== "linux") return "needs Linux";
  if (Deno.uid() !== 0) return "needs root, to make files of other users and run as one";
  try {
    Deno.statSync("/usr/bin/setpriv");
  } catch {
    return "needs /usr/bin/setpriv (util-linux)";
  }
  return undefined;
}
