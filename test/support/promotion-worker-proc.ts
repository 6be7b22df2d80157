// A stella worker in its own process (for the kill -9 test): config from the environment,
// the shared test workflow bundle from STELLA_TEST_BUNDLE.
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config';
import { createAppContext } from '../../src/core/context';
import { createStellaWorker } from '../../workers/worker';

const ctx = await createAppContext(loadConfig());
const { worker } = await createStellaWorker(ctx, { workflowBundle: { code: readFileSync(process.env.STELLA_TEST_BUNDLE!, 'utf8') } });
process.stdout.write('worker-ready\n');
await worker.run();
