// Effects that need root, each in a throwaway child: capabilities, mounts, ids, namespaces.
import t from 'tap';
import { NOT_ROOT_REASON, distUrl, ensureBuilt, isRoot, runChildJson } from '../helpers/child.js';

t.before(ensureBuilt);

const imports = `
import * as libc from '${distUrl('ffi/libc.js')}';
import * as caps from '${distUrl('ffi/caps.js')}';
import * as net from '${distUrl('ffi/net.js')}';
import { CLONE_FLAGS, MOUNT_FLAGS } from '${distUrl('ffi/arch.js')}';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
const status = (key) => readFileSync('/proc/self/status', 'utf8').match(new RegExp('^' + key + ':\\\\s+(.*)$', 'm'))[1].trim();
const attempt = (fn) => { try { return fn() ?? 'ok'; } catch (e) { return e.message; } };
const limit = (name) => readFileSync('/proc/self/limits', 'utf8').match(new RegExp('^' + name + '\\\\s+(\\\\S+)\\\\s+(\\\\S+)', 'm')).slice(1);
`;

t.test('dropping the bounding set and clearing ambient caps', async (t) => {
  if (!isRoot) { t.plan(0, NOT_ROOT_REASON); return; }
  const r = runChildJson<Record<string, string | boolean>>(`${imports}
const before = status('CapBnd');
caps.dropBoundingSet(['net_bind_service']);
const keptOne = status('CapBnd');
caps.dropBoundingSet();
caps.clearAmbient();
process.stdout.write(JSON.stringify({ before, keptOne, after: status('CapBnd'), ambient: status('CapAmb') }));
`);
  t.not(r.before, '0000000000000000', 'the child started with a bounding set');
  t.equal(r.keptOne, '0000000000000400', 'only CAP_NET_BIND_SERVICE (bit 10) kept');
  t.equal(r.after, '0000000000000000', 'CapBnd empty');
  t.equal(r.ambient, '0000000000000000', 'CapAmb empty');
});

t.test('a failing mount names its arguments exactly', async (t) => {
  if (!isRoot) { t.plan(0, NOT_ROOT_REASON); return; }
  const r = runChildJson<Record<string, string>>(`${imports}
libc.unshare(CLONE_FLAGS.CLONE_NEWNS);
const dir = process.env.STOCKADE_TEST_DIR;
const out = {
  bind: attempt(() => libc.mount('/nonexistent/gnu/store', join(dir, 'gnu/store'), null, MOUNT_FLAGS.MS_BIND | MOUNT_FLAGS.MS_REC)),
  tmpfs: attempt(() => libc.mount('tmpfs', join(dir, 'missing'), 'tmpfs', MOUNT_FLAGS.MS_NOSUID | MOUNT_FLAGS.MS_NODEV, 'size=1m,mode=0755')),
  umount: attempt(() => libc.umount2(dir, 2)),
  pivot: attempt(() => libc.pivotRoot(dir, join(dir, 'old'))),
  newuser: attempt(() => libc.unshare(CLONE_FLAGS.CLONE_NEWUSER)),
};
process.stdout.write(JSON.stringify({ dir, ...out }));
`);
  t.equal(r.bind, `mount("/nonexistent/gnu/store" -> "${r.dir}/gnu/store", MS_BIND|MS_REC): ENOENT (No such file or directory)`);
  t.equal(r.tmpfs, `mount("tmpfs" -> "${r.dir}/missing", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m,mode=0755"): ENOENT (No such file or directory)`);
  t.equal(r.umount, `umount2("${r.dir}", MNT_DETACH): EINVAL (Invalid argument)`, 'not a mount point');
  t.match(r.pivot, /^pivot_root\(".*", ".*\/old"\): (EINVAL|ENOENT) /);
  t.equal(r.newuser, 'unshare(CLONE_NEWUSER): EINVAL (Invalid argument)', 'Node is multithreaded: no user namespace');
});

t.test('mounts, hostname, lo and ids in fresh namespaces', async (t) => {
  if (!isRoot) { t.plan(0, NOT_ROOT_REASON); return; }
  const r = runChildJson<Record<string, any>>(`${imports}
libc.unshare(CLONE_FLAGS.CLONE_NEWNS | CLONE_FLAGS.CLONE_NEWUTS | CLONE_FLAGS.CLONE_NEWNET);
libc.mount(null, '/', null, MOUNT_FLAGS.MS_REC | MOUNT_FLAGS.MS_PRIVATE);
const dir = process.env.STOCKADE_TEST_DIR;
const target = join(dir, 'mnt');
mkdirSync(target);
libc.mount('tmpfs', target, 'tmpfs', MOUNT_FLAGS.MS_NOSUID | MOUNT_FLAGS.MS_NODEV, 'size=1m');
const mounted = readFileSync('/proc/self/mountinfo', 'utf8').includes(' ' + target + ' ');
libc.umount2(target, 2);
libc.sethostname('localhost');
libc.setdomainname('(none)');
const loBefore = net.interfaceFlags('lo') & 1;
net.bringInterfaceUp('lo');
const loAfter = net.interfaceFlags('lo') & 1;
libc.setRlimit('core', 0, 0);
libc.setRlimit('nofile', 64, 128);
const core = limit('Max core file size');
const nofile = limit('Max open files');
const persona = () => parseInt(readFileSync('/proc/self/personality', 'utf8'), 16);
const before = persona();
const previous = libc.setPersonality(['ADDR_NO_RANDOMIZE']);
const personality = persona();
libc.setgroups([30000]);
libc.setresgid(30000, 30000, 30000);
libc.setresuid(30001, 30001, 30001);
process.stdout.write(JSON.stringify({
  mounted, loBefore, loAfter, hostname: readFileSync('/proc/sys/kernel/hostname', 'utf8').trim(),
  domainname: readFileSync('/proc/sys/kernel/domainname', 'utf8').trim(),
  core, nofile, previousMatches: previous === before, personality,
  uid: libc.getresuid(), gid: libc.getresgid(), groups: status('Groups'), capEff: status('CapEff'),
  setuidBack: attempt(() => libc.setresuid(0, 0, 0)),
}));
`);
  t.equal(r.mounted, true, 'tmpfs mounted in the private mount namespace');
  t.equal(r.loBefore, 0, 'lo starts down in a new network namespace');
  t.equal(r.loAfter, 1, 'lo is up');
  t.equal(r.hostname, 'localhost');
  t.equal(r.domainname, '(none)');
  t.same(r.core, ['0', '0']);
  t.same(r.nofile, ['64', '128']);
  t.equal(r.previousMatches, true, 'setPersonality returns the previous persona');
  t.equal(r.personality, 0x0040000, 'ADDR_NO_RANDOMIZE');
  t.same(r.uid, { real: 30001, effective: 30001, saved: 30001 });
  t.same(r.gid, { real: 30000, effective: 30000, saved: 30000 });
  t.equal(r.groups, '30000');
  t.equal(r.capEff, '0000000000000000', 'no effective capabilities after leaving uid 0');
  t.equal(r.setuidBack, 'setresuid(0, 0, 0): EPERM (Operation not permitted)');
});
