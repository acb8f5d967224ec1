import t from 'tap';
import { checkPool } from '../../src/pool/index.js';
import { getgrnam, getgrouplist, getpwnam, getpwuid } from '../../src/ffi/nss.js';
import { runCli } from './fixtures/helpers.js';

t.test('--help on every subcommand exits 0, usage errors exit 2', async (t) => {
  for (const args of [['--help'], ['create', '--help'], ['status', '--help'], ['check', '-h']]) {
    const r = runCli(args);
    t.equal(r.code, 0, args.join(' '));
    t.match(r.stdout, /^usage: stockade pool/);
  }
  for (const args of [[], ['frobnicate'], ['status', '--frob'], ['create', '--group', 'x'], ['status'],
    ['status', '--group', 'a', '--range', '1:2:3'], ['check', '--range', '1-2'], ['create', '--group', 'g', '--count', 'ten']]) {
    const r = runCli(args);
    t.equal(r.code, 2, args.join(' ') || '(no arguments)');
    t.match(r.stderr, /^stockade pool: .*\n\nusage: stockade pool/);
  }
});

t.test('check refuses a range with uid 0, warns about accounts inside a range', async (t) => {
  const refused = runCli(['check', '--range', '0:3:30000']);
  t.equal(refused.code, 1);
  t.equal(refused.stdout, 'pool 0-2 refused: range includes uid 0\n');
  const nobody = getpwnam('nobody')!;
  t.same(checkPool({
    pool: { kind: 'range', first: nobody.uid, count: 1, gid: 30000 },
    stateDir: '/nonexistent',
    passwd: { name: 'nixbld', gecos: '', home: '/', shell: '/noshell' },
    groupName: 'nixbld',
    supplementaryGroups: 'none',
  }), [{ level: 'warning', message: `pool ${nobody.uid}-${nobody.uid}: uid ${nobody.uid} belongs to account nobody` }]);
});

t.test('NSS look-ups', async (t) => {
  t.match(getpwnam('root'), { name: 'root', uid: 0, gid: 0, home: '/root' });
  t.equal(getpwuid(0)?.name, 'root');
  t.equal(getpwnam('no-such-user-stockade'), null);
  t.equal(getpwuid(4_000_000_000), null);
  t.match(getgrnam('root'), { name: 'root', gid: 0 });
  t.equal(getgrnam('no-such-group-stockade'), null);
  t.same(getgrouplist('root', 0), [0]);
});
