import pino from 'pino';

/** Structured JSON logs on stderr so stdout stays free for command output. */
export function createLogger(level: string = process.env.STELLA_LOG_LEVEL ?? 'info', name = 'stella') {
  return pino({ name, level }, pino.destination(2));
}

export type Logger = ReturnType<typeof createLogger>;
