// Saved workflow histories (JSON, as `temporal workflow show --output json` writes them) for replay tests.
import { createRequire } from 'node:module';
import type { temporal } from '@temporalio/proto';

/**
 * The SDK's historyFromJSON resolves protobufjs from @temporalio/common while the History type
 * comes from @temporalio/proto; when npm installs each its own copy, protobufjs rejects the type
 * ("type must be a Type"). Parsing with @temporalio/proto's own copy avoids the mismatch.
 */
const req = createRequire(require.resolve('@temporalio/proto'));
const { fromJson, toJson } = req('protobufjs/ext/protojson') as {
  fromJson: (t: unknown, j: unknown, o: unknown) => unknown;
  toJson: (t: unknown, m: unknown) => unknown;
};
const { patchProtobufRoot } = req('../lib/patch-protobuf-root') as { patchProtobufRoot: (r: unknown) => { lookupType(n: string): unknown } };
const historyType = patchProtobufRoot(req('@temporalio/proto')).lookupType('temporal.api.history.v1.History');

export function historyFromFile(json: unknown): temporal.api.history.v1.History {
  return fromJson(historyType, json, { ignoreUnknownFields: true }) as temporal.api.history.v1.History;
}

/** The history as JSON in the same format (what historyFromFile reads back). */
export function historyToFile(history: temporal.api.history.v1.IHistory): unknown {
  const proto = req('@temporalio/proto') as typeof import('@temporalio/proto');
  return toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history));
}
