// `stockade explain --spec` as a packager reads it: the builder's arguments as a list.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/explain.js';
import { run } from '../audit/fixtures/helpers.js';

const POLICY = join(import.meta.dirname, '../../policies/guix-default.yaml');

t.test("explain --spec shows the arguments as a list: one argument '[PIPE, XFSZ]' and two '[PIPE,' 'XFSZ]' differ", async (t) => {
  const dir = t.testdir();
  const shown: string[] = [];
  for (const [name, args] of [['joined', ['[PIPE, XFSZ]']], ['split', ['[PIPE,', 'XFSZ]']]] as const) {
    const spec = join(dir, `${name}.json`);
    writeFileSync(spec, JSON.stringify({ name, builder: '/bin/sh', args }));
    const { code, stdout, stderr } = await run(main, ['--spec', spec, POLICY]);
    t.equal(code, 0, stderr);
    const line = stdout.split('\n').find((l) => l.includes(`name ${name},`));
    t.equal(line, `  name ${name}, builder /bin/sh, args ${JSON.stringify(args)}`);
    shown.push(line!.replace(`name ${name}`, ''));
  }
  t.not(shown[0], shown[1]);
});

t.test('explain names the setting behind each bind: the policy field at FILE:LINE:COL, or the spec', async (t) => {
  const dir = t.testdir();
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `stockade: 1\nname: p\nextends: ${POLICY}\nfilesystem:\n  paths:\n    - { source: /usr/bin, target: /opt/bin }\n`);
  const spec = join(dir, 'spec.yaml');
  writeFileSync(spec, 'name: hello\nbuilder: /bin/sh\ninputs: [/usr]\n');
  const { code, stdout, stderr } = await run(main, ['--spec', spec, policy]);
  t.equal(code, 0, stderr);
  const row = (target: string) => stdout.split('\n').find((l) => l.startsWith(`  ${target} `))?.trimEnd();
  t.match(row('/opt/bin'), new RegExp(` path +${policy}:6:7: filesystem\\.paths\\[0\\]$`));
  t.match(row('/usr'), new RegExp(` input +${spec}:3:10: inputs\\[0\\]$`));
  t.match(row('/dev/null'), new RegExp(` device +${POLICY}:\\d+:\\d+: devices\\[2\\]$`));
  t.match(row('/tmp'), / tmp$/, 'a fresh filesystem: no setting to name');
});
