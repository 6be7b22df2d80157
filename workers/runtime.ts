/**
 * The Temporal SDK runtime of this process, installed once before any worker or native
 * connection: SDK logs (TS side, forwarded Rust core logs, the workflow bundler) go through
 * stella's pino logger, so every line a worker writes is JSON; the SDK's own metrics (task slots,
 * poll latency, schedule-to-start, sticky cache) are served by the runtime's Prometheus endpoint
 * when STELLA_SDK_METRICS_ADDRESS is set.
 */
import { Runtime, makeTelemetryFilterString, type LogLevel, type LogMetadata, type Logger as SdkLogger } from '@temporalio/worker';
import { createLogger, type Logger } from '../src/log';

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The SDK's Logger interface over pino: one JSON line per SDK log call. */
export class PinoSdkLogger implements SdkLogger {
  constructor(private readonly pino: Logger) {}

  log(level: LogLevel, message: string, meta: LogMetadata = {}): void {
    let pinoLevel = PINO_LEVEL[level] ?? 'info';
    let msg = message;
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta)) fields[k === 'error' && v instanceof Error ? 'err' : k] = v;
    // The workflow bundler logs webpack's multi-line build report at INFO: keep its first line, at debug.
    if (msg.includes('\n') && /webpack|modules by path|compiled (successfully|with)/.test(msg)) {
      fields.webpack = msg;
      msg = 'workflow bundle: webpack build report';
      if (pinoLevel === 'info') pinoLevel = 'debug';
    }
    this.pino[pinoLevel](fields, msg);
  }
  trace(message: string, meta?: LogMetadata) {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata) {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata) {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata) {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata) {
    this.log('ERROR', message, meta);
  }
}

export interface RuntimeSettings {
  /** stella's logger (the SDK's lines carry component: "temporal"); default a new one at STELLA_LOG_LEVEL. */
  log?: Logger;
  /** host:port for the SDK's Prometheus endpoint (/metrics); unset: SDK metrics are not exported. */
  sdkMetricsAddress?: string;
}

let installed: RuntimeSettings | undefined;

/** Installs the runtime once per process (later calls are no-ops: the first settings win). */
export function installRuntime(settings: RuntimeSettings = {}): void {
  if (installed) return;
  installed = settings;
  const log = (settings.log ?? createLogger()).child({ component: 'temporal' });
  try {
    Runtime.install({
      // Signals are handled by the serve process (API and worker shut down together).
      shutdownSignals: [],
      logger: new PinoSdkLogger(log),
      telemetryOptions: {
        // Rust core logs are forwarded to the logger above (not printed by core in its own text format).
        logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
        ...(settings.sdkMetricsAddress
          ? {
              metrics: {
                // Prometheus conventions: counters end in _total, durations in seconds with the unit in the name.
                prometheus: { bindAddress: settings.sdkMetricsAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true },
              },
            }
          : {}),
      },
    });
  } catch {
    // Already installed in this process (e.g. by a test's worker).
  }
}
