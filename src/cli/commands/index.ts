import type { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Every command module, in help order, with the top-level commands it adds. A run loads only
 * the modules that add the command it names (`stella evidence status` loads no AWS SDK, no
 * Temporal worker); help, completion and unknown commands load them all.
 * test/cli-commands.test.ts checks each `commands` list against what the module registers.
 */
export const COMMAND_MODULES: readonly { commands: readonly string[]; load: () => Promise<Register> }[] = [
  { commands: ['dev', 'serve', 'service', 'config', 'auth'], load: async () => (await import('./dev')).registerDevCommands },
  { commands: ['auth'], load: async () => (await import('./auth-login')).registerAuthLoginCommand },
  { commands: ['evidence'], load: async () => (await import('./evidence')).registerEvidenceCommands },
  { commands: ['evidence'], load: async () => (await import('./locker')).registerLockerCommands },
  { commands: ['doctor'], load: async () => (await import('./doctor')).registerDoctorCommands },
  { commands: ['replay', 'verify', 'offline-kit', 'replay-runs'], load: async () => (await import('./replay')).registerReplayCommands },
  { commands: ['promotion'], load: async () => (await import('./promotion')).registerPromotionCommands },
  { commands: ['events'], load: async () => (await import('./events')).registerEventsCommands },
  { commands: ['scan', 'image', 'feeds', 'attest', 'scanner'], load: async () => (await import('./scan')).registerScanCommands },
  { commands: ['attest'], load: async () => (await import('./oci-attest')).registerOciAttestCommands },
  { commands: ['keys', 'rootpack'], load: async () => (await import('./keys')).registerKeysCommands },
  { commands: ['keys'], load: async () => (await import('./keys-init')).registerKeysInitCommand },
  { commands: ['backup', 'evidence'], load: async () => (await import('./backup')).registerBackupCommands },
  { commands: ['evidence'], load: async () => (await import('./retention')).registerRetentionCommands },
  { commands: ['evidence'], load: async () => (await import('./anchoring')).registerAnchoringCommands },
  { commands: ['evidence'], load: async () => (await import('./evidence-policy')).registerEvidencePolicyCommands },
  { commands: ['migrate'], load: async () => (await import('./migrate')).registerMigrateCommand },
  // Completion walks the whole command tree, so naming it loads every module.
  { commands: ['completion'], load: async () => (await import('./completion')).registerCompletionCommand },
];

/** Root options that take a value: the word after them is not the command name. */
const VALUE_OPTIONS = new Set(['--api-url', '--token', '--tenant', '--format']);

/** The top-level command named in argv (after node and the script), or undefined. */
export function commandNameOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return args[i + 1];
    if (!a.startsWith('-')) return a;
    if (VALUE_OPTIONS.has(a)) i++;
  }
  return undefined;
}

/** Registers the modules the command in `args` needs (all of them when it is unknown, help or completion). */
export async function registerFor(program: Command, args: readonly string[]): Promise<void> {
  const name = commandNameOf(args);
  const some = name && name !== 'completion' && name !== 'help' ? COMMAND_MODULES.filter((m) => m.commands.includes(name)) : [];
  const mods = some.length ? some : COMMAND_MODULES;
  const registers = await Promise.all(mods.map((m) => m.load()));
  for (const register of registers) register(program);
}

/** Every command group, in help order. */
export async function registerAll(program: Command): Promise<void> {
  for (const register of await Promise.all(COMMAND_MODULES.map((m) => m.load()))) register(program);
}
