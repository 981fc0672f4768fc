import t from 'tap'
import { createKafkaClient } from '../../server/kafka/client.js'
import { capturingLogger, type LogLine } from '../helpers/capturing-log.js'

// Regression: a Ctrl-C while the consumer joined its group logged kafkajs's "Connection error: write
// after end" and "Crash: KafkaJSConnectionError" as errors, though the stop was clean.
t.test('kafkajs errors are logged as errors while the client is in use, as warnings once its owner is closing it', async (t) => {
  const lines: LogLine[] = []
  let closing = false
  const kafka = createKafkaClient({ brokers: ['127.0.0.1:1'], clientId: 'client-test', requestTimeoutMs: 1000, closing: () => closing }, capturingLogger(lines))
  kafka.logger().error('Connection error: connect ECONNREFUSED', { broker: '127.0.0.1:1' })
  closing = true
  kafka.logger().error('Crash: KafkaJSConnectionError: Connection error: write after end', { groupId: 'g' })
  kafka.logger().warn('still a warning', {})
  kafka.logger().info('below the level kafkajs is given', {})
  t.same(lines.map(({ level, message }) => [level, message]), [
    ['error', 'Connection error: connect ECONNREFUSED'],
    ['warn', 'Crash: KafkaJSConnectionError: Connection error: write after end'],
    ['warn', 'still a warning']
  ])
  t.match(lines[0]?.fields, { broker: '127.0.0.1:1' }, 'with kafkajs\'s fields')
})
