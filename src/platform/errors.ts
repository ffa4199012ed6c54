import type { FastifyError, FastifyInstance } from 'fastify'

/** A failure the caller can act on; mapped to its HTTP status at the edge, message passed through. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'AppError'
  }
}

export const notFound = (message: string) => new AppError(404, message)
export const conflict = (message: string) => new AppError(409, message)
export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new AppError(400, message, details)
export const unavailable = (message: string) => new AppError(503, message)

/** Fastify's own client-side errors (bad JSON, wrong content type, body too large...) keep their message. */
function isClientError(error: FastifyError): boolean {
  return typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500
}

/**
 * One root handler: validation and deliberate 4xx errors pass through as {"error": message};
 * everything else is logged and masked, so no stack trace, SQL or path reaches a caller.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      return reply.status(error.statusCode).send({ error: error.message, ...error.details })
    }
    if (error.validation) {
      return reply.status(400).send({ error: error.message })
    }
    if (isClientError(error)) {
      if (error.statusCode === 429 || error.statusCode === 401 || error.statusCode === 403) {
        return reply.status(error.statusCode).send({ error: error.message })
      }
      return reply.status(error.statusCode ?? 400).send({ error: error.message })
    }
    request.log.error({ err: error }, 'request failed')
    const status = error.statusCode === 503 ? 503 : 500
    return reply
      .status(status)
      .send({ error: status === 503 ? 'Service temporarily unavailable' : 'Internal server error' })
  })
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: `Route ${request.method} ${request.url.split('?')[0]} not found` })
  })
}
