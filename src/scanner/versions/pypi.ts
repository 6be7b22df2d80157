import { compare, valid } from '@renovatebot/pep440';

/** PEP 440 comparison for PyPI packages (1.0.dev0 < 1.0a1 < 1.0 < 1.0.post1). */
export function isValidPep440(v: string): boolean {
  return valid(v) !== null;
}

export function comparePep440(a: string, b: string): number {
  if (!isValidPep440(a)) throw new Error(`invalid PEP 440 version ${JSON.stringify(a)}`);
  if (!isValidPep440(b)) throw new Error(`invalid PEP 440 version ${JSON.stringify(b)}`);
  return Math.sign(compare(a, b));
}

/** PEP 503 name normalisation, used to match distribution names. */
export function normalizePypiName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}
