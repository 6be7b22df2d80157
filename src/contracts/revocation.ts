/** HTTP contract of token revocation (src/api/routes/revocations.ts): revoke an access token by jti or a token key by kid. */
import { z } from 'zod';

/** `POST /auth/revocations`: exactly one of jti and kid. */
export const RevokeBody = z
  .object({
    jti: z.string().min(1).max(256).optional(),
    kid: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,200}$/, 'expected a key id')
      .optional(),
    reason: z.string().max(1000).optional(),
  })
  .strict()
  .refine((b) => (b.jti === undefined) !== (b.kid === undefined), 'give exactly one of jti and kid');
export type RevokeBody = z.infer<typeof RevokeBody>;

export const RevocationAnswer = z.object({
  kind: z.enum(['jti', 'kid']),
  value: z.string(),
  actor: z.string(),
  reason: z.string().nullable(),
  revokedAt: z.string(),
  /** When the revoked key was the active token key: the new key that now signs tokens. */
  rotatedTo: z.string().optional(),
});
export type RevocationAnswer = z.infer<typeof RevocationAnswer>;
