import type { Command } from 'commander';
import { registerDevCommands } from './dev';
import { registerEvidenceCommands } from './evidence';
import { registerRetentionCommands } from './retention';
import { registerLockerCommands } from './locker';
import { registerDoctorCommands } from './doctor';
import { registerReplayCommands } from './replay';
import { registerPromotionCommands } from './promotion';
import { registerScanCommands } from './scan';
import { registerKeysCommands } from './keys';
import { registerBackupCommands } from './backup';
import { registerAnchoringCommands } from './anchoring';
import { registerEvidencePolicyCommands } from './evidence-policy';
import { registerAuthLoginCommand } from './auth-login';
import { registerCompletionCommand } from './completion';

/** Every command group, in help order. */
export function registerAll(program: Command): void {
  registerDevCommands(program);
  registerAuthLoginCommand(program);
  registerEvidenceCommands(program);
  registerLockerCommands(program);
  registerDoctorCommands(program);
  registerReplayCommands(program);
  registerPromotionCommands(program);
  registerScanCommands(program);
  registerKeysCommands(program);
  registerBackupCommands(program);
  registerRetentionCommands(program);
  registerAnchoringCommands(program);
  registerEvidencePolicyCommands(program);
  registerCompletionCommand(program);
}
