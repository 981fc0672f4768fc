import type { FastifyInstance, FastifyRequest } from 'fastify'
import { within } from '../lifecycle.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * When the request must be answered (`performance.now()` milliseconds): its arrival plus
     * KAFKA_SEND_TIMEOUT_MS. What it waits for before Kafka (Redis, the identity service's keys)
     * counts inside it.
     */
    deadline: number
  }
}

/** Stamps each request with its deadline as it arrives: call it before any other hook is added. */
export function stampDeadlines (app: FastifyInstance, ms: number): void {
  app.decorateRequest('deadline', 0)
  app.addHook('onRequest', async (request) => { request.deadline = performance.now() + ms })
}

/** What `work` settles with, or, if the request's deadline comes first, what `late()` returns (or throws). */
export function beforeDeadline<T> (request: FastifyRequest, work: Promise<T>, late: () => T): Promise<T> {
  return within(work, request.deadline - performance.now(), late)
}
