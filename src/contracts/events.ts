/**
 * HTTP contract of `POST /events/push` beyond stella's own body (src/contracts/scan.ts
 * PushEventBody): the distribution registry's notification envelope and Harbor's webhook
 * payload. Loose: registries add fields, and only the ones read here matter.
 */
import { z } from 'zod';
import { PushEventBody, PushResult } from './scan';

const Text = z.string().max(4096);

/** distribution's `Envelope` (media type application/vnd.docker.distribution.events.v1+json). */
export const DistributionEnvelope = z.looseObject({
  events: z
    .array(
      z.looseObject({
        id: Text.optional(),
        action: Text.optional(),
        target: z
          .looseObject({ mediaType: Text.optional(), digest: Text.optional(), repository: Text.optional(), url: Text.optional(), tag: Text.optional() })
          .optional(),
        request: z.looseObject({ host: Text.optional() }).optional(),
      }),
    )
    .max(1000),
});

/** Harbor's webhook payload (policy "HTTP", payload format Default). */
export const HarborWebhook = z.looseObject({
  type: Text,
  occur_at: z.number().optional(),
  operator: Text.optional(),
  event_data: z.looseObject({
    resources: z
      .array(z.looseObject({ digest: Text.optional(), tag: Text.optional(), resource_url: Text.optional() }))
      .max(1000)
      .optional(),
    repository: z.looseObject({ repo_full_name: Text.optional(), namespace: Text.optional(), name: Text.optional() }).optional(),
  }),
});

/** Any of the three bodies `POST /events/push` accepts. */
export const PushEventsBody = z.union([DistributionEnvelope, HarborWebhook, PushEventBody]);

/** A webhook's answer: one result per registry event acted on or ignored; pulls (and blob pushes) only counted. */
export const PushEventsResult = z.looseObject({ results: z.array(PushResult), dropped: z.number() });

/** What `POST /events/push` answers: stella's body → one PushResult; a registry webhook → PushEventsResult. */
export const PushAnswer = z.union([PushEventsResult, PushResult]);
