export type LocalKafkaErrorCode = 'JAVA_MISSING' | 'MAVEN_MISSING' | 'FETCH_FAILED' | 'START_FAILED' | 'START_TIMEOUT'

export class LocalKafkaError extends Error {
  readonly code: LocalKafkaErrorCode

  constructor (code: LocalKafkaErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'LocalKafkaError'
    this.code = code
  }
}

export const OR_USE_DOCKER = 'Or use a Kafka broker of your own: set KAFKA_BROKERS, e.g. run `docker compose up -d` ' +
  'with the repo\'s docker-compose.yml and set KAFKA_BROKERS=127.0.0.1:9092.'

/** The text of a failed child process: execFile's message holds its stderr; StorageTool reports on stdout. */
export function errorText (err: unknown): string {
  const { message, stdout } = err as { message?: string, stdout?: string }
  return [message, stdout].filter(Boolean).join('\n').trim() || String(err)
}
