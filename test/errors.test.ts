import t from 'tap'
import { ErrorCode, NotifyError, RequestError } from '../server/errors.js'
import { AuthError } from '../server/auth/tokens.js'
import { IdempotencyUnavailableError } from '../server/idempotency/types.js'
import { InboxRefusedError, InboxRewoundError, InboxUnavailableError } from '../server/inbox/types.js'
import { KafkaError, KafkaUnavailableError, RecordTooLargeError } from '../server/kafka/errors.js'

t.test('every error of the gateway has a code, says whether a retry can help, and keeps its cause', async (t) => {
  const cause = new Error('ECONNREFUSED')
  const errors: Array<[NotifyError, { name: string, code: string, canRetry: boolean }]> = [
    [new KafkaUnavailableError('down', { cause }), { name: 'KafkaUnavailableError', code: 'KAFKA_UNAVAILABLE', canRetry: true }],
    [new RecordTooLargeError(2, 1), { name: 'RecordTooLargeError', code: 'KAFKA_RECORD_TOO_LARGE', canRetry: false }],
    [new InboxUnavailableError('down', { cause }), { name: 'InboxUnavailableError', code: 'INBOX_UNAVAILABLE', canRetry: true }],
    [new InboxRefusedError('22008 date/time field value out of range', { cause }), { name: 'InboxRefusedError', code: 'INBOX_REFUSED', canRetry: false }],
    [new InboxRewoundError('behind'), { name: 'InboxRewoundError', code: 'INBOX_REWOUND', canRetry: false }],
    [new IdempotencyUnavailableError('down', { cause }), { name: 'IdempotencyUnavailableError', code: 'IDEMPOTENCY_UNAVAILABLE', canRetry: true }],
    [new AuthError(ErrorCode.TOKEN_EXPIRED, 'expired', { cause }), { name: 'AuthError', code: 'TOKEN_EXPIRED', canRetry: false }],
    [new RequestError(ErrorCode.UNKNOWN_USER, 'body/followeeId "9" is not a known user', { cause }), { name: 'RequestError', code: 'UNKNOWN_USER', canRetry: false }]
  ]
  for (const [error, expected] of errors) {
    t.type(error, NotifyError, expected.name)
    t.match(error, expected)
    if (!(error instanceof RecordTooLargeError || error instanceof InboxRewoundError)) t.equal(error.cause, cause, `${expected.name} keeps its cause`)
    t.notOk(Object.hasOwn(error, 'statusCode'), `${expected.name} carries no HTTP status`)
  }
  t.type(new KafkaUnavailableError('down'), KafkaError, 'the Kafka adapter\'s errors share a class')
  t.equal(new InboxUnavailableError('down').cause, undefined, 'no cause when none was given')
})

t.test('a refused request can be retried as it is only when it was refused for now: a limit, a shutdown', async (t) => {
  const retriable = Object.values(ErrorCode).filter((code) => new RequestError(code, 'why').canRetry)
  t.same(retriable, [ErrorCode.RATE_LIMITED, ErrorCode.SHUTTING_DOWN])
  t.equal(new RequestError(ErrorCode.RATE_LIMITED, 'slow down', { retryAfter: 30 }).retryAfter, 30)
  t.equal(new RequestError(ErrorCode.INVALID_BODY, 'body/x').retryAfter, undefined)
})
