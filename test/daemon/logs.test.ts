// Build log files: a build's log is kept up to max_log_size, then says it was truncated; only
// the newest logs_kept files stay, the oldest go as new builds start (also across restarts).
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildLogs } from '../../src/daemon/logs.js';
import { loadDaemonConfig } from '../../src/daemon/config.js';
import { ROOT } from '../runtime/helpers.js';

t.test('bounded per build and in number', async (t) => {
  const state = mkdtempSync(join(tmpdir(), 'stk-logs-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const logged: string[] = [];
  const logs = new BuildLogs(state, { maxBytes: 10, kept: 2 }, (m) => logged.push(m));
  logs.open();
  t.equal(statSync(join(state, 'logs')).mode & 0o777, 0o700, 'the directory is root\'s alone');
  const ids = ['0000000000000001', '0000000000000002', '0000000000000003'];
  const paths = ids.map((id) => {
    const log = logs.create(id);
    t.equal(log.write('12345'), false);
    t.equal(log.write(Buffer.from('67890abc')), true, 'the write that reached the bound says so');
    t.equal(log.write('more'), false, 'once');
    log.close();
    return log.path;
  });
  t.equal(readFileSync(paths[2], 'utf8'), '1234567890\nstockade: log truncated here: it reached 10 bytes (max_log_size)\n');
  t.equal(statSync(paths[2]).mode & 0o777, 0o600);
  const names = () => readdirSync(join(state, 'logs')).sort();
  t.same(names().map((n) => n.slice(-20, -4)), ids.slice(1), 'only the newest 2 stay');
  logs.close();

  const again = new BuildLogs(state, { maxBytes: 10, kept: 1 }, (m) => logged.push(m));
  again.open();
  t.same(names().map((n) => n.slice(-20, -4)), [ids[2]], 'a restart with fewer kept removes the oldest');
  again.close();
  t.same(logged, []);
});

t.test('no log files with max_log_size 0', async (t) => {
  const state = mkdtempSync(join(tmpdir(), 'stk-logs-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const logs = new BuildLogs(state, { maxBytes: 0, kept: 5 }, () => {});
  logs.open();
  const log = logs.create('0000000000000001');
  t.equal(log.write('x'), false);
  log.close();
  t.same(readdirSync(state), []);
});

t.test('the shipped config bounds every user', async (t) => {
  const shipped = loadDaemonConfig(join(ROOT, 'contrib/stockade-daemon.yaml'));
  t.match(shipped, { maxJobs: 2, maxRunningPerUser: 1, maxQueuedPerUser: 16, maxConnections: 128, maxConnectionsPerUser: 8, idleTimeoutSeconds: 10, maxLogSize: 64 << 20, logsKept: 1000 });
});
