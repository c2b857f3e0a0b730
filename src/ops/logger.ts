import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The process logger: JSON lines on stdout. Calls get children with their ids. A media worker's logger writes to
 * `destination` (its lines go to the main thread, which writes them: one writer, so lines never interleave).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const opts = { level, base: { app: 'msml-recorder' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination) : pino(opts);
}

/** Writes a line another thread's logger made with the same writer as `log`. */
export function writeLogLine(log: Logger, line: string): void {
  (log as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym].write(line);
}
