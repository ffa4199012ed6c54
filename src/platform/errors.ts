import type { FastifyError, FastifyInstance } from 'fastify'
import { ConflictError, type DomainError, InvalidInputError, NotFoundError } from './domain-errors.ts'

/** How an error answers: its HTTP status and a stable code (docs/API.md "Errors"). */
interface ErrorMapping {
  status: number
  code: string
}

/** The one table of the HTTP edge: each domain error class, its status and its stable code. */
export const DOMAIN_ERRORS: readonly (readonly [
  abstract new (...args: never[]) => DomainError,
  ErrorMapping,
])[] = [
  [NotFoundError, { status: 404, code: 'not_found' }],
  [ConflictError, { status: 409, code: 'conflict' }],
  [InvalidInputError, { status: 400, code: 'invalid_input' }],
]

/** The codes of answers that are not domain errors: Fastify's own, and the masked ones. */
export const EDGE_ERRORS = {
  validation: { status: 400, code: 'validation_failed' },
  routeNotFound: { status: 404, code: 'route_not_found' },
  unavailable: { status: 503, code: 'unavailable' },
  internal: { status: 500, code: 'internal' },
} as const

const mappingOf = (error: unknown): ErrorMapping | undefined =>
  DOMAIN_ERRORS.find(([type]) => error instanceof type)?.[1]

/** Fastify's own client-side errors (bad JSON, wrong content type, body too large, 401/403/429...) keep their message. */
function isClientError(error: FastifyError): boolean {
  return typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500
}

/**
 * One root handler: domain errors (by the table above), validation and Fastify's deliberate 4xx
 * errors pass through as {"error": message}; everything else is logged and masked, so no stack
 * trace, SQL or path reaches a caller.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const mapping = mappingOf(error)
    if (mapping) {
      const details = (error as unknown as DomainError).details
      return reply.status(mapping.status).send({ error: error.message, ...details })
    }
    if (error.validation) {
      return reply.status(EDGE_ERRORS.validation.status).send({ error: error.message })
    }
    if (isClientError(error)) {
      return reply.status(error.statusCode as number).send({ error: error.message })
    }
    request.log.error({ err: error }, 'request failed')
    const { status } = error.statusCode === 503 ? EDGE_ERRORS.unavailable : EDGE_ERRORS.internal
    return reply
      .status(status)
      .send({ error: status === 503 ? 'Service temporarily unavailable' : 'Internal server error' })
  })
  app.setNotFoundHandler((request, reply) => {
    reply
      .status(EDGE_ERRORS.routeNotFound.status)
      .send({ error: `Route ${request.method} ${request.url.split('?')[0]} not found` })
  })
}
