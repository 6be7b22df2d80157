/**
 * Maven version ordering (OSV ecosystem "Maven"), as Maven's own ComparableVersion defines it:
 * the version is split at '.', '-' and digit/letter transitions into numbers, qualifiers and
 * sub-lists ('-' and a transition open one); trailing "null" items (0, "", ga, final, release)
 * are dropped; known qualifiers order alpha < beta < milestone < rc = cr < snapshot < (release)
 * < sp, and any other qualifier sorts after them, alphabetically. Never throws: every string is a
 * Maven version.
 */

type Item = { kind: 'int'; value: bigint } | { kind: 'str'; value: string } | { kind: 'list'; items: Item[] };

const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const RELEASE_INDEX = String(QUALIFIERS.indexOf(''));
const ALIASES: Record<string, string> = { ga: '', final: '', release: '', cr: 'rc' };

function comparableQualifier(q: string): string {
  const i = QUALIFIERS.indexOf(q);
  return i === -1 ? `${QUALIFIERS.length}-${q}` : String(i);
}

function stringItem(value: string, followedByDigit: boolean): Item {
  let v = value;
  if (followedByDigit && v.length === 1) v = v === 'a' ? 'alpha' : v === 'b' ? 'beta' : v === 'm' ? 'milestone' : v;
  return { kind: 'str', value: ALIASES[v] ?? v };
}

function parseItem(isDigit: boolean, s: string, followedByDigit = false): Item {
  return isDigit ? { kind: 'int', value: BigInt(s) } : stringItem(s, followedByDigit);
}

function isNull(item: Item): boolean {
  if (item.kind === 'int') return item.value === 0n;
  if (item.kind === 'str') return comparableQualifier(item.value) === RELEASE_INDEX;
  return item.items.length === 0;
}

function normalize(list: Item[]): void {
  for (let i = list.length - 1; i >= 0; i--) {
    const last = list[i]!;
    if (isNull(last)) list.splice(i, 1);
    else if (last.kind !== 'list') break;
  }
}

export function parseMavenVersion(version: string): Item {
  const v = version.trim().toLowerCase();
  const root: Item[] = [];
  let list = root;
  const stack: Item[][] = [root];
  const open = () => {
    const sub: Item[] = [];
    list.push({ kind: 'list', items: sub });
    list = sub;
    stack.push(sub);
  };
  let isDigit = false;
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '.') {
      list.push(i === start ? { kind: 'int', value: 0n } : parseItem(isDigit, v.slice(start, i)));
      start = i + 1;
    } else if (c === '-') {
      list.push(i === start ? { kind: 'int', value: 0n } : parseItem(isDigit, v.slice(start, i)));
      start = i + 1;
      open();
    } else if (c >= '0' && c <= '9') {
      if (!isDigit && i > start) {
        // "alpha1": the qualifier, then the number in a sub-list.
        list.push(stringItem(v.slice(start, i), true));
        start = i;
        open();
      }
      isDigit = true;
    } else {
      if (isDigit && i > start) {
        list.push(parseItem(true, v.slice(start, i)));
        start = i;
        open();
      }
      isDigit = false;
    }
  }
  if (v.length > start) list.push(parseItem(isDigit, v.slice(start)));
  while (stack.length) normalize(stack.pop()!);
  return { kind: 'list', items: root };
}

function cmp(a: Item | undefined, b: Item | undefined): number {
  if (a === undefined) return b === undefined ? 0 : -cmp(b, undefined);
  switch (a.kind) {
    case 'int':
      if (b === undefined) return a.value === 0n ? 0 : 1;
      if (b.kind !== 'int') return 1;
      return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
    case 'str': {
      if (b === undefined) return order(comparableQualifier(a.value), RELEASE_INDEX);
      if (b.kind === 'int' || b.kind === 'list') return -1;
      return order(comparableQualifier(a.value), comparableQualifier(b.value));
    }
    case 'list': {
      if (b === undefined) return a.items.length === 0 ? 0 : cmp(a.items[0], undefined);
      if (b.kind === 'int') return -1;
      if (b.kind === 'str') return 1;
      const n = Math.max(a.items.length, b.items.length);
      for (let i = 0; i < n; i++) {
        const r = cmp(a.items[i], b.items[i]);
        if (r !== 0) return r;
      }
      return 0;
    }
  }
}

const order = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

export function compareMaven(a: string, b: string): number {
  return cmp(parseMavenVersion(a), parseMavenVersion(b));
}

export function isValidMavenVersion(v: string): boolean {
  return typeof v === 'string' && v.trim() !== '' && !/\s/.test(v.trim());
}
