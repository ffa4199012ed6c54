import type { FastifyInstance } from 'fastify'
import { InvalidInputError } from './domain-errors.ts'

/** Request bodies nested deeper than this are refused: no API document needs more. */
export const MAX_JSON_DEPTH = 32

/**
 * The nesting depth of a parsed JSON value, counted without recursion (a 5,000-deep body would
 * overflow the stack of a recursive walk — and did, in JSON.stringify on the way to the database:
 * a 500, issue 16 row 5). Stops counting past `limit`.
 */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let max = 0
  const stack: [unknown, number][] = [[value, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number]
    if (typeof v !== 'object' || v === null) continue
    if (depth + 1 > max) max = depth + 1
    if (max > limit) return max
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1])
  }
  return max
}

/** A 400 for every request whose JSON body is nested deeper than MAX_JSON_DEPTH, before validation. */
export function limitJsonDepth(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (request.body !== null && typeof request.body === 'object' && jsonDepth(request.body) > MAX_JSON_DEPTH)
      throw new InvalidInputError(`body nested deeper than ${MAX_JSON_DEPTH} levels`)
  })
}
