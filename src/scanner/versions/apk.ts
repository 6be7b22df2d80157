/**
 * Alpine (apk-tools) version comparison, re-implemented from apk-tools' version.c
 * token rules: digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}.
 *
 * - Numeric components compare numerically, except a component with a leading zero
 *   (after the first) compares as a string, like Gentoo.
 * - Suffix order: _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p.
 * - When one version runs out first, it is older unless the other continues with a
 *   pre-release suffix; otherwise the token kind decides (a letter makes a version newer
 *   than the end, a suffix/revision newer still: 1.2.3 < 1.2.3-r1 < 1.2.3_p1).
 */

enum Tok {
  InitialDigit,
  Digit,
  Letter,
  Suffix,
  SuffixNo,
  CommitHash,
  RevisionNo,
  End,
  Invalid,
}

const SUFFIXES: Record<string, number> = { alpha: 1, beta: 2, pre: 3, rc: 4, cvs: 6, svn: 7, git: 8, hg: 9, p: 10 };
const SUFFIX_NONE = 5;

interface Token {
  tok: Tok;
  value: string;
  number: bigint;
  suffix: number;
}

class Tokenizer {
  private pos = 0;
  readonly t: Token = { tok: Tok.InitialDigit, value: '', number: 0n, suffix: 0 };

  constructor(private readonly s: string) {
    this.t.tok = Tok.InitialDigit;
    this.digits();
  }

  private span(re: RegExp): string {
    const start = this.pos;
    while (this.pos < this.s.length && re.test(this.s[this.pos]!)) this.pos++;
    return this.s.slice(start, this.pos);
  }

  private digits(): void {
    const v = this.span(/[0-9]/);
    this.t.value = v;
    this.t.number = v === '' ? 0n : BigInt(v);
    if (v === '') this.t.tok = Tok.Invalid;
  }

  next(): void {
    const t = this.t;
    if (this.pos >= this.s.length) {
      t.tok = Tok.End;
      return;
    }
    const c = this.s[this.pos]!;
    if (c >= 'a' && c <= 'z') {
      if (t.tok > Tok.Digit) return void (t.tok = Tok.Invalid);
      t.value = c;
      t.tok = Tok.Letter;
      this.pos++;
    } else if (c === '.' || (c >= '0' && c <= '9')) {
      if (c === '.') {
        if (t.tok > Tok.Digit) return void (t.tok = Tok.Invalid);
        this.pos++;
      }
      if (t.tok === Tok.InitialDigit || t.tok === Tok.Digit) t.tok = Tok.Digit;
      else if (t.tok === Tok.Suffix) t.tok = Tok.SuffixNo;
      else return void (t.tok = Tok.Invalid);
      this.digits();
    } else if (c === '_') {
      if (t.tok > Tok.SuffixNo) return void (t.tok = Tok.Invalid);
      this.pos++;
      t.value = this.span(/[a-z]/);
      const sv = SUFFIXES[t.value];
      if (sv === undefined) return void (t.tok = Tok.Invalid);
      t.suffix = sv;
      t.tok = Tok.Suffix;
    } else if (c === '~') {
      if (t.tok >= Tok.CommitHash) return void (t.tok = Tok.Invalid);
      this.pos++;
      t.value = this.span(/[0-9a-fA-F]/);
      if (t.value === '') return void (t.tok = Tok.Invalid);
      t.tok = Tok.CommitHash;
    } else if (c === '-') {
      if (t.tok >= Tok.RevisionNo || this.s[this.pos + 1] !== 'r') return void (t.tok = Tok.Invalid);
      this.pos += 2;
      t.tok = Tok.RevisionNo;
      this.digits();
    } else {
      t.tok = Tok.Invalid;
    }
  }
}

function cmpToken(a: Token, b: Token): number {
  const str = () => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
  const num = (x: bigint, y: bigint) => (x < y ? -1 : x > y ? 1 : 0);
  switch (a.tok) {
    case Tok.Digit:
      if (a.value.startsWith('0') || b.value.startsWith('0')) return str();
      return num(a.number, b.number);
    case Tok.InitialDigit:
    case Tok.SuffixNo:
    case Tok.RevisionNo:
      return num(a.number, b.number);
    case Tok.Letter:
      return str();
    case Tok.Suffix:
      return Math.sign(a.suffix - b.suffix);
    default:
      return str();
  }
}

export function isValidApkVersion(v: string): boolean {
  const t = new Tokenizer(v);
  while (t.t.tok < Tok.End) t.next();
  return t.t.tok === Tok.End;
}

/** Compare two apk versions: -1, 0 or 1. Throws on versions apk itself would reject. */
export function compareApk(a: string, b: string): number {
  if (!isValidApkVersion(a)) throw new Error(`invalid apk version ${JSON.stringify(a)}`);
  if (!isValidApkVersion(b)) throw new Error(`invalid apk version ${JSON.stringify(b)}`);
  const ta = new Tokenizer(a);
  const tb = new Tokenizer(b);
  while (ta.t.tok === tb.t.tok && ta.t.tok < Tok.End) {
    const r = cmpToken(ta.t, tb.t);
    if (r !== 0) return r;
    ta.next();
    tb.next();
  }
  const x = ta.t;
  const y = tb.t;
  if (x.tok === y.tok) return 0;
  if (x.tok === Tok.Suffix && x.suffix < SUFFIX_NONE) return -1;
  if (y.tok === Tok.Suffix && y.suffix < SUFFIX_NONE) return 1;
  return x.tok > y.tok ? -1 : 1;
}
