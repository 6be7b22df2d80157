/** One-line messages for zod validation failures ("field.path: what is wrong"). */
import type { z } from 'zod';

export function formatZodError(err: z.ZodError, root = 'body'): string {
  return err.issues.map((i) => `${i.path.map(String).join('.') || root}: ${i.message}`).join('; ');
}
