import type { Logger } from '../../server/logger.js'

export interface LogLine { level: 'error' | 'warn' | 'info' | 'debug', fields: unknown, message: string | undefined }

/** A logger that keeps each line it is given (debug lines dropped), for tests that assert what was logged and how. */
export function capturingLogger (lines: LogLine[]): Logger {
  const log: Logger = {
    error: (fields, message) => { lines.push({ level: 'error', fields, message }) },
    warn: (fields, message) => { lines.push({ level: 'warn', fields, message }) },
    info: (fields, message) => { lines.push({ level: 'info', fields, message }) },
    debug: () => {},
    child: () => log
  }
  return log
}
