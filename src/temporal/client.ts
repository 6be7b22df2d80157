import { Client, Connection } from '@temporalio/client';
import type { StellaConfig } from '../config';
import { SEARCH_ATTRIBUTES } from './names';

export interface TemporalHandles {
  connection: Connection;
  client: Client;
  namespace: string;
  taskQueue: string;
}

export async function connectTemporal(cfg: StellaConfig): Promise<TemporalHandles> {
  if (!cfg.temporal.address) throw new Error('STELLA_TEMPORAL_ADDRESS is not set (stella dev up starts a Temporal dev server and sets it for you)');
  const connection = await Connection.connect({ address: cfg.temporal.address, connectTimeout: '10s' });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  return { connection, client, namespace: cfg.temporal.namespace, taskQueue: cfg.temporal.taskQueue };
}

/**
 * Registers our custom search attributes on the namespace (idempotent). The dev server gets
 * them on its command line too; a real cluster gets them here at first start.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in (existing.customAttributes ?? {})));
  if (!missing.length) return;
  const typeCode = { Keyword: 2, Text: 1, Int: 3, Datetime: 5 } as const;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([n, t]) => [n, typeCode[t]])),
    });
  } catch (e) {
    if ((e as { code?: number }).code !== 6 /* gRPC ALREADY_EXISTS: a concurrent start added them */) throw e;
  }
}
