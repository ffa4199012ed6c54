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
  unauthenticated: { status: 401, code: 'unauthenticated' },
  forbidden: { status: 403, code: 'forbidden' },
  uriTooLong: { status: 414, code: 'uri_too_long' },
} as const

/** Fastify's own client errors by status (bad JSON, wrong content type, body too large, rate limit). */
const CLIENT_ERROR_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
}

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
      return reply.status(mapping.status).send({ error: error.message, code: mapping.code, ...details })
    }
    if (error.validation) {
      const { status, code } = EDGE_ERRORS.validation
      return reply.status(status).send({ error: error.message, code })
    }
    if (isClientError(error)) {
      const status = error.statusCode as number
      return reply
        .status(status)
        .send({ error: error.message, code: CLIENT_ERROR_CODES[status] ?? 'bad_request' })
    }
    request.log.error({ err: error }, 'request failed')
    const { status, code } = error.statusCode === 503 ? EDGE_ERRORS.unavailable : EDGE_ERRORS.internal
    return reply
      .status(status)
      .send({ error: status === 503 ? 'Service temporarily unavailable' : 'Internal server error', code })
  })
  app.setNotFoundHandler((request, reply) => {
    const { status, code } = EDGE_ERRORS.routeNotFound
    reply
      .status(status)
      .send({ error: `Route ${request.method} ${request.url.split('?')[0]} not found`, code })
  })
}
