import { pino, type Logger } from 'pino';

/** The process logger: JSON lines on stdout. Calls get children with their ids. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { app: 'msml-recorder' }, timestamp: pino.stdTimeFunctions.isoTime });
}
