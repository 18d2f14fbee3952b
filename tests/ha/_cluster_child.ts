/**
 * A test process that starts an HA cluster (one auth process, HAProxy),
 * says where it is (one JSON line on stdout) and waits to be killed:
 * cluster_orphan_test.ts kills it as a CI job or a person would.
 *
 * @module
 */
import { startHaCluster } from "./_cluster.ts";

const c = await startHaCluster({ instances: 1 });
console.log(JSON.stringify({
  dir: c.dir,
  auth: c.instances[0].proc.pid,
  haproxy: c.haproxyPid,
  watchdog: c.watchdogPid,
}));
setInterval(() => {}, 3_600_000);
