import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import { type AppOptions, app } from './app.ts'
import { logFormat, loggerOptions, QuietReadsLogController, requestId } from './platform/logging.ts'
import { urlErrorHandler } from './platform/url-errors.ts'
import { validatorCompiler } from './platform/validation.ts'

/** Builds the Fastify instance (logger, validation, limits) around the application plugin. */
export async function buildServer(options: AppOptions): Promise<FastifyInstance> {
  const server = Fastify({
    logger: loggerOptions(options.config.LOG_LEVEL, logFormat(options.config.LOG_FORMAT)),
    logController: new QuietReadsLogController(),
    genReqId: requestId,
    requestIdHeader: false,
    bodyLimit: options.config.BODY_LIMIT_BYTES,
    // PGlite's first start on a loaded machine can exceed the 10 s default.
    pluginTimeout: 60_000,
    // URLs the router cannot read: the API's error shape and security headers, not Fastify's echo.
    frameworkErrors: urlErrorHandler(!options.config.AUTH_DISABLED),
  }).withTypeProvider<TypeBoxTypeProvider>()
  server.setValidatorCompiler(validatorCompiler)
  server.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  await server.register(app, options)
  return server
}
