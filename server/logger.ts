/** The slice of pino that modules outside Fastify log through (Fastify's `app.log` satisfies it). */
export interface Logger {
  error (obj: unknown, msg?: string): void
  warn (obj: unknown, msg?: string): void
  info (obj: unknown, msg?: string): void
  debug (obj: unknown, msg?: string): void
  child (bindings: Record<string, unknown>): Logger
}
