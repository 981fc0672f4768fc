import { existsSync } from 'node:fs'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, configWarnings, loadConfig, type Config } from './config.js'
import { CloseStack } from './lifecycle.js'
import { chooseLogFormat, createLogger } from './logger.js'
import { muteWarnings } from './process-warnings.js'
import { createServices } from './services.js'
import { onStopSignals } from './stop-signals.js'

/** The one entry point: config → local broker if needed → app → listen → graceful close. */
async function main (): Promise<void> {
  // kafkajs 2.2.4's request queue re-arms a check with a negative delay (`scheduleCheckPendingRequests`:
  // `throttledUntil` is -1 until a broker throttles). Every Node clamps it to 1 ms, Node 20 silently;
  // Node 24 also prints a TimeoutNegativeWarning, once, that names nothing a user can act on.
  muteWarnings(['TimeoutNegativeWarning'])
  // A .env in the working directory fills in what the environment does not set.
  if (existsSync('.env')) process.loadEnvFile('.env')
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`kafka-notify: ${error.message}\n`)
    process.exit(1)
  }
  const log = createLogger(config.logLevel, chooseLogFormat(config.logFormat, process.stdout.isTTY === true, process.env.NODE_ENV))
  // What the start opened, closed newest first on a signal or a failed start: the local broker
  // stops even if the app did not close cleanly.
  const shutdown = new CloseStack()

  // SIGINT and SIGTERM are counted here, not by close-with-grace, which takes a second one as
  // "exit now": one Ctrl-C on `npm start` reaches npm and node both, and npm passes its own on.
  const closing = closeWithGrace({ delay: config.shutdownGraceMs, logger: log, skip: ['SIGINT', 'SIGTERM'] }, async ({ signal, err }) => {
    if (err !== undefined) log.error({ err }, 'Shutting down after an error')
    else if (signal !== undefined) log.info({ signal }, 'Shutting down')
    await shutdown.close(log)
  })
  onStopSignals(() => true, (signal) => {
    log.info({ signal }, 'Shutting down')
    void closing.close()
  })

  try {
    if (config.kafka.brokers === undefined) {
      // The one way into the dev launcher: loaded only when there is no broker to use, so a
      // deployment with KAFKA_BROKERS never loads it.
      const { startLocalKafka } = await import('../local/kafka/launcher.js')
      const localKafka = await startLocalKafka({
        dataDir: config.dataDir,
        port: config.kafka.localPort,
        controllerPort: config.kafka.localControllerPort,
        log: (line) => log.info(line)
      })
      shutdown.defer('stop the local Kafka broker', () => localKafka.stop())
      log.info({ pid: localKafka.pid, brokers: localKafka.brokers }, 'Local Kafka broker started')
      config.kafka.brokers = localKafka.brokers
    }
    const services = await createServices(config, log)
    // From here on, closing the app closes the services; if it cannot be built, they are closed here.
    const app = await buildApp(config, services, { logger: log }).catch(async (error: unknown) => {
      await services.close()
      throw error
    })
    shutdown.defer('close the gateway (sockets, requests in flight, then its services)', () => app.close())
    await app.listen({ host: config.host, port: config.port })
  } catch (error) {
    await shutdown.close(log)
    throw error
  }
  for (const warning of configWarnings(config)) log.warn(warning)
  log.info(`kafka-notify is up: open http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`)
}

main().catch((error: unknown) => {
  process.stderr.write(`kafka-notify failed to start: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
