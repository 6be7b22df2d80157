/** HTTP contract of `stella doctor` (src/api/routes/doctor.ts). */
import { z } from 'zod';

export const DoctorQuery = z.looseObject({
  category: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .optional(),
  check: z
    .string()
    .regex(/^check(\.[a-z0-9-]+)+$/, 'expected a check id such as check.storage.evidencelocker')
    .optional(),
  tenant: z.string().optional(),
});

export const DoctorCheckList = z.object({
  checks: z.array(z.object({ id: z.string(), categories: z.array(z.string()), description: z.string(), scope: z.string().nullable() })),
});

export const DoctorResult = z.object({
  id: z.string(),
  description: z.string().optional(),
  categories: z.array(z.string()).optional(),
  status: z.enum(['PASS', 'WARN', 'FAIL', 'SKIP']),
  message: z.string(),
  remedy: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  durationMs: z.number(),
});
export type DoctorResult = z.infer<typeof DoctorResult>;

export const DoctorReport = z.object({
  ok: z.boolean(),
  summary: z.object({ pass: z.number(), warn: z.number(), fail: z.number(), skip: z.number() }),
  results: z.array(DoctorResult),
});
export type DoctorReport = z.infer<typeof DoctorReport>;
