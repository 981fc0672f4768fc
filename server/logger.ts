import { pino, type Logger as PinoLogger } from 'pino'
import type { Config } from './config.js'

/** The slice of pino that modules outside Fastify log through (Fastify's `app.log` satisfies it). */
export interface Logger {
  error (obj: unknown, msg?: string): void
  warn (obj: unknown, msg?: string): void
  info (obj: unknown, msg?: string): void
  debug (obj: unknown, msg?: string): void
  child (bindings: Record<string, unknown>): Logger
}

/** `pretty`: a line a person reads (time, level, message, fields); `json`: pino's JSON object a line, for machines. */
export type LogFormat = NonNullable<Config['logFormat']>

/**
 * LOG_FORMAT when it is set. Else pretty for a person at a terminal, and JSON wherever a program
 * reads the lines: a pipe, a file, a log collector, and any NODE_ENV=production deployment.
 */
export function chooseLogFormat (configured: LogFormat | undefined, stdoutIsTTY: boolean, nodeEnv: string | undefined): LogFormat {
  return configured ?? (stdoutIsTTY && nodeEnv !== 'production' ? 'pretty' : 'json')
}

/** The gateway's logger on stdout. pino-pretty runs in pino's transport thread: formatting costs the event loop nothing. */
export function createLogger (level: Config['logLevel'], format: LogFormat): PinoLogger {
  if (format === 'json') return pino({ level })
  return pino({
    level,
    transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true } }
  })
}
