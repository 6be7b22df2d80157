/** `stella attest push|discover|published` and `attest import --image`: attestations in OCI registries (an API client). */
import type { Command } from 'commander';
import { Option } from 'commander';
import { action, type Ctx, ctxOf, group, requireDigest } from '../common';
import { EXIT } from '../exit';
import { type Column, print, renderTable, shortDigest } from '../output';
import { qs } from '../client';
import { Discovery, type FoundDocument, PUBLISH_METHODS, PublicationList, PublishConfigView, Published, RegistryImport } from '../../contracts/oci-attest';

export function registerOciAttestCommands(program: Command): void {
  const g = group(program, 'attest', 'in-toto/DSSE attestations');
  for (const register of [pushCommand, discoverCommand, publishedCommand, pushConfigCommand]) register(g);
}

const insecureOption = () => new Option('--insecure-registry', "speak plain HTTP to the image's registry (never implied)");

function pushCommand(attest: Command): void {
  attest
    .command('push')
    .description("push stella's attestations and SBOM about an artifact to its image's repository (OCI referrers, else cosign's sha256-<hex>.att tag)")
    .requiredOption('--artifact <digest>', 'artifact (image manifest) digest sha256:…')
    .requiredOption('--image <ref>', 'the image repository (host/repo, host/repo:tag or host/repo@digest)')
    .addOption(new Option('--method <method>', 'force a layout (default: referrers when the registry serves the API)').choices([...PUBLISH_METHODS]))
    .addOption(insecureOption())
    .action(
      action(async (o: { artifact: string; image: string; method?: string; insecureRegistry?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.artifact, 'artifact digest');
        const r = await c.api().call(Published, 'POST', '/attestations/registry/push', {
          artifact: o.artifact,
          image: o.image,
          insecure: !!o.insecureRegistry,
          ...(o.method ? { method: o.method } : {}),
        });
        print(c.format, r, () =>
          [
            `${r.repository} (${r.method}): ${r.items.filter((i) => i.pushed).length} pushed, ${r.items.filter((i) => !i.pushed).length} already there`,
            renderTable(r.items, [
              { header: 'EVIDENCE', get: (i) => shortDigest(i.evidenceId) },
              { header: 'KIND', get: (i) => i.kind },
              { header: 'PREDICATE', get: (i) => i.predicateType ?? '-' },
              { header: 'MANIFEST', get: (i) => i.manifestDigest },
              { header: 'TAG', get: (i) => i.tag ?? '-' },
              { header: 'PUSHED', get: (i) => (i.pushed ? 'yes' : 'already') },
            ]),
          ].join('\n'),
        );
      }),
    );
}

const foundColumns: Column<FoundDocument & { evidenceId?: string | null }>[] = [
  { header: 'SOURCE', get: (i) => i.source },
  { header: 'FORMAT', get: (i) => i.format },
  { header: 'PREDICATE', get: (i) => i.predicateType ?? '-' },
  { header: 'STATUS', get: (i) => i.status },
  { header: 'SIGNER', get: (i) => i.signer ?? '-' },
  { header: 'MANIFEST', get: (i) => shortDigest(i.manifestDigest) },
  { header: 'REASON', get: (i) => i.reason ?? '' },
];

function discoverCommand(attest: Command): void {
  attest
    .command('discover')
    .description("list the attestations a registry holds for an image's digest (referrers and cosign .att), each with its verification status")
    .requiredOption('--image <ref>', 'image reference (host/repo:tag or host/repo@sha256:…)')
    .addOption(insecureOption())
    .action(
      action(async (o: { image: string; insecureRegistry?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c
          .api()
          .call(Discovery, 'GET', `/attestations/registry/discover${qs({ image: o.image, insecure: o.insecureRegistry ? 'true' : undefined })}`);
        print(c.format, r, () =>
          r.items.length ? `${r.repository}@${r.digest}\n${renderTable(r.items, foundColumns)}` : `no attestations in ${r.repository} for ${r.digest}`,
        );
      }),
    );
}

function publishedCommand(attest: Command): void {
  attest
    .command('published')
    .description('what stella pushed to registries for an artifact (repository, layout, manifest digest)')
    .requiredOption('--artifact <digest>', 'artifact digest sha256:…')
    .action(
      action(async (o: { artifact: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.artifact, 'artifact digest');
        const r = await c.api().call(PublicationList, 'GET', `/attestations/registry/publications${qs({ artifact: o.artifact })}`);
        print(c.format, r, () =>
          r.items.length
            ? renderTable(r.items, [
                { header: 'PUSHED', get: (i) => i.pushedAt },
                { header: 'REPOSITORY', get: (i) => i.repository },
                { header: 'METHOD', get: (i) => i.method },
                { header: 'EVIDENCE', get: (i) => shortDigest(i.evidenceId) },
                { header: 'MANIFEST', get: (i) => i.manifestDigest },
                { header: 'TAG', get: (i) => i.tag ?? '-' },
              ])
            : `nothing pushed for ${o.artifact} (stella attest push --artifact ${o.artifact} --image <repo>)`,
        );
      }),
    );
}

/**
 * `stella attest import --image <ref>`: import what verifies; exits INTEGRITY (4) when any
 * attestation there failed verification (reported, not stored). Called by the attest import command.
 */
export async function importFromImage(c: Ctx, o: { image: string; insecureRegistry?: boolean }): Promise<number> {
  const r = await c.api().call(RegistryImport, 'POST', '/attestations/registry/import', { image: o.image, insecure: !!o.insecureRegistry });
  print(c.format, r, () =>
    [
      `${r.repository}@${r.digest}: ${r.imported} imported, ${r.failed} failed verification (not stored)`,
      ...(r.items.length
        ? [
            renderTable(r.items, [
              ...foundColumns.slice(0, 5),
              { header: 'EVIDENCE', get: (i) => (i.evidenceId ? `${shortDigest(i.evidenceId)}${i.created ? '' : ' (already)'}` : '-') },
              foundColumns[6]!,
            ]),
          ]
        : []),
    ].join('\n'),
  );
  if (r.failed) process.stderr.write(`${r.failed} attestation(s) in ${r.repository} failed verification; see REASON\n`);
  return r.failed ? EXIT.INTEGRITY : r.imported ? EXIT.OK : EXIT.NOT_FOUND;
}

function pushConfigCommand(attest: Command): void {
  attest
    .command('push-config')
    .description(
      "which environments publish on promotion (a promotion to one pushes stella's attestations to the image's registry); shows the setting without options",
    )
    .option('--environments <env...>', 'replace the list of publishing environments')
    .option('--none', 'no environment publishes')
    .addOption(insecureOption())
    .action(
      action(async (o: { environments?: string[]; none?: boolean; insecureRegistry?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const set = o.none || o.environments;
        const r = set
          ? await c.api().call(PublishConfigView, 'PUT', '/attestations/registry/config', {
              environments: o.none ? [] : o.environments!.flatMap((e) => e.split(',')).filter(Boolean),
              insecure: !!o.insecureRegistry,
            })
          : await c.api().call(PublishConfigView, 'GET', '/attestations/registry/config');
        print(
          c.format,
          r,
          () => `publish on promotion to: ${r.environments.length ? r.environments.join(', ') : '(none)'}${r.insecure ? ' (plain HTTP allowed)' : ''}`,
        );
      }),
    );
}
