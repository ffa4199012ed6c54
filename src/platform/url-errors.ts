import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { EDGE_ERRORS } from './errors.ts'

/**
 * The headers every answer carries (helmet's, for an answer the router gives before any hook runs):
 * an error body is never a page, a script or a frame.
 */
const HARDENED_HEADERS = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
}

/**
 * Fastify's `frameworkErrors`: a URL the router cannot read (bad percent-encoding, a path parameter
 * over the length limit). Answered in the API's error shape, without echoing the URL, with the
 * security headers; an /api request without credentials gets the 401 any protected route gives,
 * so an anonymous caller learns nothing about which URLs the API would parse.
 */
export function urlErrorHandler(authRequired: boolean) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    reply.headers({ ...HARDENED_HEADERS, 'x-request-id': request.id })
    if (authRequired && request.url.startsWith('/api/') && !request.headers.authorization) {
      reply
        .status(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'Missing or invalid bearer token', code: EDGE_ERRORS.unauthenticated.code })
      return
    }
    answerBadUrl(error, reply)
  }
}

function answerBadUrl(error: FastifyError, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.status(414).send({
      error: 'a path parameter is longer than allowed (100 characters)',
      code: EDGE_ERRORS.uriTooLong.code,
    })
    return
  }
  reply.status(400).send({ error: 'the URL is not valid percent-encoded UTF-8', code: 'bad_request' })
}
