/**
 * A real HAProxy in front of auth processes: TCP mode (TLS, when the
 * instances serve it, passes through), round robin, health checks on each
 * instance's diagnostics `/readyz` when given, a stats socket for per-server
 * session counts. The configuration is the one docs/deployment.md shows.
 *
 * @module
 */

/** The HAProxy binary, when installed. */
export const HAPROXY = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

/** One backend server. */
export interface HaproxyServer {
  /** Server name (also the key of {@linkcode Haproxy.sessions}). */
  name: string;
  /** `host:port` of the instance. */
  addr: string;
  /** Port of its diagnostics listener: health-checked with `GET /readyz`. */
  checkPort?: number;
  /** Send a PROXY protocol v2 header on each connection (`send-proxy-v2`). */
  sendProxy?: boolean;
}

/** A running HAProxy. */
export interface Haproxy {
  /** `127.0.0.1:PORT` it listens on. */
  address: string;
  /** Its process. */
  pid: number;
  /** Total sessions per server so far. */
  sessions(): Promise<Record<string, number>>;
  /** Stops it. */
  stop(): Promise<void>;
}

function config(dir: string, port: number, servers: HaproxyServer[]): string {
  const checked = servers.some((s) => s.checkPort !== undefined);
  return [
    "global",
    `  stats socket ${dir}/haproxy.sock mode 600 level admin`,
    "  maxconn 4000",
    "defaults",
    "  mode tcp",
    "  timeout connect 1s",
    "  timeout client 60s",
    "  timeout server 60s",
    "  timeout check 2s",
    "  retries 2",
    "  option redispatch",
    "frontend auth",
    `  bind 127.0.0.1:${port}`,
    "  default_backend auth",
    "backend auth",
    "  balance roundrobin",
    ...(checked ? ["  option httpchk GET /readyz"] : []),
    ...servers.map((s) =>
      `  server ${s.name} ${s.addr}` +
      (s.checkPort !== undefined ? ` check port ${s.checkPort} inter 300ms fall 2 rise 1` : "") +
      (s.sendProxy ? " send-proxy-v2" : "")
    ),
    "",
  ].join("\n");
}

async function statsCommand(socket: string, command: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    await conn.write(new TextEncoder().encode(command + "\n"));
    let out = "";
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
    return out;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the peer */ }
  }
}

/** Starts HAProxy on 127.0.0.1:`port` with its files in `dir`; resolves once it accepts. */
export async function startHaproxy(
  dir: string,
  port: number,
  servers: HaproxyServer[],
  track?: (pid: number) => void,
): Promise<Haproxy> {
  if (!HAPROXY) throw new Error("haproxy is not installed");
  const cfg = `${dir}/haproxy.cfg`;
  await Deno.writeTextFile(cfg, config(dir, port, servers));
  const child = new Deno.Command(HAPROXY, {
    args: ["-f", cfg, "-db"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  track?.(child.pid);
  let errLog = "";
  const drain = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) errLog += chunk;
  })();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await drain;
  };
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (err) {
      if (i > 200) {
        await stop();
        throw new Error(`haproxy never listened: ${errLog}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    address: `127.0.0.1:${port}`,
    pid: child.pid,
    async sessions() {
      const csv = await statsCommand(`${dir}/haproxy.sock`, "show stat");
      const [header, ...rows] = csv.replace(/^# /, "").trim().split("\n");
      const cols = header.split(",");
      const out: Record<string, number> = {};
      for (const row of rows) {
        const f = row.split(",");
        if (f[0] === "auth" && servers.some((s) => s.name === f[1])) {
          out[f[1]] = Number(f[cols.indexOf("stot")]);
        }
      }
      return out;
    },
    stop,
  };
}
