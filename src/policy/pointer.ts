// JSON pointers into policies and specs, and how messages name them. Imports nothing: the plan
// and the runtime name fields without loading the YAML parser or the validator.

export function pointerJoin(pointer: string, key: string | number): string {
  const k = String(key);
  // Most keys need no escaping; testing first keeps merges cheap.
  return `${pointer}/${/[~/]/.test(k) ? k.replace(/~/g, '~0').replace(/\//g, '~1') : k}`;
}

/** Renders a JSON pointer as a dotted path for messages: /filesystem/paths/0/source → filesystem.paths[0].source */
export function displayPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out || '(top level)';
}
