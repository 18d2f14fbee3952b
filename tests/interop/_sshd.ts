/**
 * A real OpenSSH `sshd` on loopback that trusts what tbot's `ssh_host` output
 * wrote (host key and certificate, `TrustedUserCAKeys`), and `ssh` with an
 * `identity` output's `ssh_config`. Needs `openssh-server`, `openssh-client`
 * and root (sshd privilege separation, login as root).
 *
 * @module
 */
import { Daemon, freePort, run } from "./_interop_fixture.ts";

const SSHD = "/usr/sbin/sshd";

/** Starts sshd with the files of the `ssh_host` output in `hostDir`; `dir` holds its config. */
export async function startSshd(
  dir: string,
  hostDir: string,
): Promise<{ port: number; sshd: Daemon }> {
  // sshd insists on its privilege separation directory.
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const port = freePort();
  const config = `${dir}/sshd_config`;
  await Deno.writeTextFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostDir}/ssh_host`,
      `HostCertificate ${hostDir}/ssh_host-cert.pub`,
      `TrustedUserCAKeys ${hostDir}/ssh_host-user-ca.pub`,
      "AuthorizedKeysFile none",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "PidFile none",
      "PermitRootLogin prohibit-password",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  const sshd = new Daemon(SSHD, ["-D", "-e", "-f", config]);
  await sshd.waitFor(/Server listening on 127\.0\.0\.1/);
  return { port, sshd };
}

/** `ssh -F <idDir>/ssh_config -p PORT user@127.0.0.1 command`, in batch mode. */
export function ssh(idDir: string, port: number, user: string, command: string) {
  return run("ssh", [
    "-F",
    `${idDir}/ssh_config`,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "ConnectTimeout=10",
    "-p",
    String(port),
    `${user}@127.0.0.1`,
    command,
  ]);
}
