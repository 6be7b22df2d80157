/** `stella evidence anchor consistency|checkpoint|witness`: anchors in standard formats (C2SP checkpoints, RFC 9162 proofs, witnesses). */
import { promises as fsp } from 'node:fs';
import type { Command } from 'commander';
import { action, ctxOf, group } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderKv } from '../output';
import { qs } from '../client';
import { AnchorCheckpoint, ConsistencyResponse, CosignatureResponse } from '../../contracts/anchoring';

function idArg(id: string, allowLatest = false): string {
  const v = id.trim().toLowerCase();
  if (allowLatest && v === 'latest') return v;
  if (!/^[0-9a-f]{8,64}$/.test(v))
    throw new CliError(`malformed anchor id ${JSON.stringify(id)}: expected 8-64 hex characters (stella evidence anchor list)`, EXIT.USAGE);
  return v;
}

export function anchorConsistencyCommand(an: Command): void {
  an.command('consistency')
    .description('RFC 9162 consistency proof between two anchors, checked against both signed roots; exit 4 when they are not consistent')
    .requiredOption('--from <anchor-id>', 'the older anchor')
    .requiredOption('--to <anchor-id>', 'the newer anchor')
    .action(
      action(async (o: { from: string; to: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(ConsistencyResponse, 'GET', `/evidence/anchors/consistency${qs({ from: idArg(o.from), to: idArg(o.to) })}`);
        print(c.format, r, () =>
          renderKv({
            result: r.ok ? 'CONSISTENT' : `NOT CONSISTENT (${r.problem})`,
            from: `${r.from.id} (${r.from.logSize} leaves, root ${r.from.rootHash})`,
            to: `${r.to.id} (${r.to.logSize} leaves, root ${r.to.rootHash})`,
            proof: `${r.proof.length} hashes`,
            detail: r.detail,
          }),
        );
        return r.ok ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

export function anchorCheckpointCommand(an: Command): void {
  an.command('checkpoint <anchor-id>')
    .description('the anchor as a C2SP checkpoint (signed note + witness cosignatures), its RFC 3161 token and the vkeys to verify them')
    .option('--output <file>', 'write the checkpoint note to this file (and the token to <file>.tsr when there is one)')
    .action(
      action(async (id: string, o: { output?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(AnchorCheckpoint, 'GET', `/evidence/anchors/${idArg(id, true)}/checkpoint`);
        if (o.output) {
          if (!r.checkpoint) throw new CliError(`anchor ${r.anchorId.slice(0, 12)} predates checkpoints; nothing to write`, EXIT.USAGE);
          await fsp.writeFile(o.output, r.checkpoint, { mode: 0o644 });
          if (r.timestamp) await fsp.writeFile(`${o.output}.tsr`, Buffer.from(r.timestamp.token, 'base64'), { mode: 0o644 });
        }
        print(c.format, r, () =>
          [
            r.checkpoint ?? '(no checkpoint: anchor made before checkpoints)',
            renderKv({
              anchor: r.anchorId,
              vkeys: r.vkeys.map((k) => `${k.vkey} (${k.status})`).join('; ') || 'none',
              timestamp: r.timestamp ? `${r.timestamp.genTime} from ${r.timestamp.tsaUrl}` : 'none',
              witnesses: `${r.witness.valid} of ${r.witness.witnesses.length} configured cosigned (quorum ${r.witness.quorum})`,
              ...(o.output ? { written: `${o.output}${r.timestamp ? ` and ${o.output}.tsr` : ''}` } : {}),
            }),
          ].join('\n'),
        );
      }),
    );
}

export function anchorWitnessCommands(an: Command): void {
  const w = group(an, 'witness', 'witness cosignatures (C2SP tlog-cosignature/v1) on anchor checkpoints');
  w.command('add <anchor-id>')
    .description("store a configured witness's cosignature: a cosigned checkpoint note or its signature line(s)")
    .requiredOption('--file <file>', 'what the witness returned ("-" for stdin)')
    .action(
      action(async (id: string, o: { file: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        let text: string;
        try {
          text = o.file === '-' ? await readStdin() : await fsp.readFile(o.file, 'utf8');
        } catch {
          throw new CliError(`${o.file}: no such file (cosignature)`, EXIT.USAGE);
        }
        const r = await c.api().call(CosignatureResponse, 'POST', `/evidence/anchors/${idArg(id)}/cosignatures`, { cosignature: text });
        print(c.format, r, () => r.added.map((a) => `cosigned by ${a.witness} (key ${a.keyId}) at ${a.signedAt}`).join('\n'));
      }),
    );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const ch of process.stdin) chunks.push(ch as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
