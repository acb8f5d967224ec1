import t from 'tap';
import { LineSplitter } from '../../src/runtime/lines.js';

t.test('lines are handed out whole, however the stream cuts them', async (t) => {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  for (const chunk of ['{"a":', '1}\n{"b"', ':2}\n\n', 'tail']) splitter.push(chunk);
  t.same(lines, ['{"a":1}', '{"b":2}', '']);
  t.equal(splitter.pending, 'tail', 'an unfinished line waits for its newline');
  splitter.discard();
  splitter.push('x\n');
  t.same(lines.at(-1), 'x', 'after discard, the dropped text does not come back');
});

