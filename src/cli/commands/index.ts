import type { Command } from 'commander';
import { registerDevCommands } from './dev';
import { registerEvidenceCommands } from './evidence';

/** Every command group; feature modules add theirs here. */
export function registerAll(program: Command): void {
  registerDevCommands(program);
  registerEvidenceCommands(program);
}
