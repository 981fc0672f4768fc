import { Ajv, type ErrorObject } from 'ajv'
import type { FastifySchemaCompiler } from 'fastify'

const common = { removeAdditional: false, useDefaults: true, allErrors: false } as const
// Bodies are JSON and already typed: `{ "followeeId": 2 }` is an error, not the string "2".
const bodyAjv = new Ajv({ ...common, coerceTypes: false })
// Query strings and path params are text by nature: `?limit=20` means the number 20.
const textAjv = new Ajv({ ...common, coerceTypes: 'array' })

/** Fastify's validator compiler: strict types for bodies, coercion for query, params and headers. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object)

/** Validation messages name the offending field, including one that should not be there. */
export function schemaErrorFormatter (errors: ErrorObject[], dataVar: string): Error {
  const [error] = errors
  if (error === undefined) return new Error(`${dataVar} is invalid`)
  const where = `${dataVar}${error.instancePath}`
  const extra = error.keyword === 'additionalProperties' ? ` (${String(error.params['additionalProperty'])})` : ''
  return new Error(`${where} ${error.message ?? 'is invalid'}${extra}`)
}
