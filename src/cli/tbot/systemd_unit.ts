/**
 * The systemd unit `tbot install systemd` writes, after Teleport's template:
 * restart always, `ExecReload` sends SIGHUP (an immediate renewal), and a
 * PID file. Keybound adds `RuntimeDirectory=` so the PID file's directory
 * exists and belongs to the service user (a non-root `User=` cannot write
 * to `/run` itself). `SocketBindDeny=` keeps port 9229 unbindable: Deno opens
 * an unauthenticated debugger there on SIGUSR1, which tbot already refuses
 * (docs/security.md, "No debugger on a signal"); this holds even if that
 * refusal were ever late. `DENO_NO_UPDATE_CHECK=1`: a unit that runs tbot
 * from source with `deno run` would otherwise have Deno fetch its latest
 * version over HTTPS half a second after each start, and that client builds
 * the process's TLS root store before tbot can claim it empty for its
 * pinned trust (docs/security.md "Transport"), costing the slower
 * `node:https` transport.
 *
 * @module
 */

/** Options of {@linkcode renderSystemdUnit}. */
export interface SystemdUnitOptions {
  /** Unit name without `.service`. */
  name: string;
  /** `User=`. */
  user: string;
  /** `Group=`. */
  group: string;
  /** The program and fixed arguments that run tbot, absolute paths. */
  command: string[];
  /** Absolute path of the config file. */
  configPath: string;
  /** Absolute path of the PID file. */
  pidFile: string;
  /** Value of `TELEPORT_ANONYMOUS_TELEMETRY` (Keybound itself sends nothing either way). */
  anonymousTelemetry: boolean;
}

/** Quotes one word for an `Exec*=` line (systemd.service(5) "Command lines"). */
export function systemdQuote(word: string): string {
  if (/^[A-Za-z0-9_\-+=.,/:@]+$/.test(word)) return word;
  const escaped = word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    .replace(/%/g, "%%").replace(/\$/g, "$$$$");
  return `"${escaped}"`;
}

/** The default PID file of unit `name`: inside its runtime directory. */
export function defaultPidFile(name: string): string {
  return `/run/${name}/${name}.pid`;
}

/** Renders the unit file. */
export function renderSystemdUnit(o: SystemdUnitOptions): string {
  const exec = [...o.command, "start", "-c", o.configPath, `--pid-file=${o.pidFile}`]
    .map(systemdQuote).join(" ");
  return [
    "[Unit]",
    `Description=${o.name} - Keybound Machine & Workload Identity Service (tbot)`,
    "After=network.target",
    "",
    "[Service]",
    "Type=simple",
    `User=${o.user}`,
    `Group=${o.group}`,
    "Restart=always",
    "RestartSec=5",
    `Environment="TELEPORT_ANONYMOUS_TELEMETRY=${o.anonymousTelemetry ? 1 : 0}"`,
    "Environment=DENO_NO_UPDATE_CHECK=1",
    `RuntimeDirectory=${o.name}`,
    `ExecStart=${exec}`,
    "ExecReload=/bin/kill -HUP $MAINPID",
    `PIDFile=${systemdQuote(o.pidFile)}`,
    "SocketBindDeny=ipv4:tcp:9229",
    "SocketBindDeny=ipv6:tcp:9229",
    "LimitNOFILE=524288",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
