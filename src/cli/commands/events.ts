/**
 * `stella events push <ref>`: tell stella an image was pushed (what a registry webhook does),
 * so auto-scan starts its scan by digest. Exit 0 started (or joined), 8 queued (the image is
 * not available to the scanner yet), 1 ignored (auto-scan off or push not among its triggers),
 * 7 the reference is not the --digest given; the API's errors map as everywhere (README table).
 */
import type { Command } from 'commander';
import { action, ctxOf, group, requireDigest } from '../common';
import { EXIT } from '../exit';
import { print } from '../output';
import { PushResult } from '../../contracts/scan';

export function registerEventsCommands(program: Command): void {
  const events = group(program, 'events', 'registry events for auto-scan (what a registry webhook sends to POST /events/push)');
  events
    .command('push <ref>')
    .description('an image was pushed: <ref> is host/repo:tag, host/repo@sha256:…, or a catalogue name; starts its scan when auto-scan takes pushes')
    .option('--digest <digest>', 'the pushed manifest digest: refused (exit 7) when <ref> resolves to another')
    .action(
      action(async (ref: string, o: { digest?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.digest !== undefined) requireDigest(o.digest, '--digest');
        const r = await c.api().call(PushResult, 'POST', '/events/push', { image: ref, ...(o.digest ? { digest: o.digest } : {}) });
        print(c.format, r, () => {
          if (r.status === 'started')
            return `${r.joined ? 'joined the running scan' : 'scan started'}: ${r.workflowId} (${r.artifactDigest})\nnext: stella scan image --image ${ref}`;
          return `${r.status}: ${r.reason ?? '-'} (event ${r.eventId})`;
        });
        if (r.status === 'queued') return EXIT.PENDING;
        if (r.status === 'ignored') return EXIT.FAILURE;
        return EXIT.OK;
      }),
    );
}
