import type { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Every command module, in help order, with the top-level commands it adds and, for a group that
 * several modules add to, the subcommands it adds there. A run loads only the modules that add the
 * command it names (`stella evidence status` loads locker.ts alone: no AWS SDK, no Temporal worker,
 * none of the other evidence modules' contracts); help, completion and unknown commands load them all.
 * test/cli-build.test.ts checks each `commands` and `subcommands` list against what the module registers.
 */
export const COMMAND_MODULES: readonly {
  commands: readonly string[];
  subcommands?: Readonly<Record<string, readonly string[]>>;
  load: () => Promise<Register>;
}[] = [
  {
    commands: ['dev', 'serve', 'service', 'config', 'auth'],
    subcommands: { auth: ['token', 'revoke'] },
    load: async () => (await import('./dev')).registerDevCommands,
  },
  { commands: ['auth'], subcommands: { auth: ['login'] }, load: async () => (await import('./auth-login')).registerAuthLoginCommand },
  {
    commands: ['evidence'],
    subcommands: { evidence: ['put', 'get', 'list', 'exists', 'inspect', 'verify', 'verify-report'] },
    load: async () => (await import('./evidence')).registerEvidenceCommands,
  },
  {
    commands: ['evidence'],
    subcommands: {
      evidence: [
        'status',
        'store',
        'provenance',
        'chain',
        'index',
        'storage',
        'mark-corrupted',
        'acknowledge',
        'tombstone',
        'recover',
        'retry-store',
        'ingest',
      ],
    },
    load: async () => (await import('./locker')).registerLockerCommands,
  },
  { commands: ['doctor'], load: async () => (await import('./doctor')).registerDoctorCommands },
  { commands: ['replay', 'verify', 'offline-kit', 'replay-runs'], load: async () => (await import('./replay')).registerReplayCommands },
  { commands: ['promotion'], load: async () => (await import('./promotion')).registerPromotionCommands },
  { commands: ['events'], load: async () => (await import('./events')).registerEventsCommands },
  {
    commands: ['scan', 'image', 'feeds', 'attest', 'scanner'],
    subcommands: { attest: ['create', 'list', 'verify', 'import', 'export', 'status'] },
    load: async () => (await import('./scan')).registerScanCommands,
  },
  {
    commands: ['attest'],
    subcommands: { attest: ['push', 'discover', 'published', 'push-config'] },
    load: async () => (await import('./oci-attest')).registerOciAttestCommands,
  },
  {
    commands: ['keys', 'rootpack'],
    subcommands: { keys: ['generate', 'list', 'rotate', 'export-rootpack'] },
    load: async () => (await import('./keys')).registerKeysCommands,
  },
  { commands: ['keys'], subcommands: { keys: ['init'] }, load: async () => (await import('./keys-init')).registerKeysInitCommand },
  {
    commands: ['backup', 'evidence'],
    subcommands: { evidence: ['storage', 'restore', 'export', 'diagnostics'] },
    load: async () => (await import('./backup')).registerBackupCommands,
  },
  {
    commands: ['evidence'],
    subcommands: { evidence: ['policy', 'hold', 'cleanup', 'archive', 'retention'] },
    load: async () => (await import('./retention')).registerRetentionCommands,
  },
  { commands: ['evidence'], subcommands: { evidence: ['anchor', 'proof'] }, load: async () => (await import('./anchoring')).registerAnchoringCommands },
  { commands: ['evidence'], subcommands: { evidence: ['policy'] }, load: async () => (await import('./evidence-policy')).registerEvidencePolicyCommands },
  { commands: ['migrate'], load: async () => (await import('./migrate')).registerMigrateCommand },
  // Completion walks the whole command tree, so naming it loads every module.
  { commands: ['completion'], load: async () => (await import('./completion')).registerCompletionCommand },
];

/** Root options that take a value: the word after them is not the command name. */
const VALUE_OPTIONS = new Set(['--api-url', '--token', '--tenant', '--format']);

/** The top-level command named in argv (after node and the script) and the word after it, if any. */
export function commandNameOf(args: readonly string[]): string | undefined {
  return commandPathOf(args)[0];
}

function commandPathOf(args: readonly string[]): [string | undefined, string | undefined] {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return [args[i + 1], undefined];
    if (!a.startsWith('-')) return [a, args[i + 1]];
    if (VALUE_OPTIONS.has(a)) i++;
  }
  return [undefined, undefined];
}

/** The modules a run of `args` needs: all of them when the command is unknown, help or completion. */
export function modulesFor(args: readonly string[]): typeof COMMAND_MODULES {
  const [name, next] = commandPathOf(args);
  if (!name || name === 'completion' || name === 'help') return COMMAND_MODULES;
  const some = COMMAND_MODULES.filter((m) => m.commands.includes(name));
  if (!some.length) return COMMAND_MODULES;
  // A group several modules add to: only the modules that add the subcommand named right after it
  // (an option there, `help` or an unknown word: every module of the group, for the full help).
  const bySub = next ? some.filter((m) => m.subcommands?.[name]?.includes(next)) : [];
  return bySub.length ? bySub : some;
}

/** Registers the modules the command in `args` needs (all of them when it is unknown, help or completion). */
export async function registerFor(program: Command, args: readonly string[]): Promise<void> {
  const registers = await Promise.all(modulesFor(args).map((m) => m.load()));
  for (const register of registers) register(program);
}

/** Every command group, in help order. */
export async function registerAll(program: Command): Promise<void> {
  for (const register of await Promise.all(COMMAND_MODULES.map((m) => m.load()))) register(program);
}
