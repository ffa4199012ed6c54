import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv'
import * as ajvFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped once more.
const addFormats = ajvFormats.default.default

const common: Options = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false }

/**
 * Query strings and path params are text, so they are coerced to the schema's types
 * (`limit=10` → 10); JSON bodies are not, so `"device_name": 42` is a 400, not the string "42".
 */
const coercing = addFormats(new Ajv({ ...common, coerceTypes: 'array' }))
const strict = addFormats(new Ajv({ ...common, coerceTypes: false }))

/**
 * Where a NUL character (U+0000) sits in a value, in a string or a key, as a JSON pointer.
 * PostgreSQL text and jsonb cannot hold one: let through, it would fail in the database (a 500).
 * Iterative, so a deeply nested body cannot exhaust the stack.
 */
function nulPath(value: unknown): string | undefined {
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }]
  while (stack.length > 0) {
    const { value: v, path } = stack.pop() as { value: unknown; path: string }
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path || '/'
    } else if (v !== null && typeof v === 'object') {
      for (const [key, child] of Object.entries(v)) {
        if (key.includes('\u0000')) return `${path}/${key.replaceAll('\u0000', '\\u0000')}`
        stack.push({ value: child, path: `${path}/${key}` })
      }
    }
  }
  return undefined
}

/** The schema's validator, and then no NUL character anywhere in what it accepted. */
function withoutNul(validate: ValidateFunction) {
  const check = (data: unknown): boolean => {
    if (!validate(data)) {
      check.errors = validate.errors
      return false
    }
    const at = nulPath(data)
    const error: ErrorObject = {
      instancePath: at === '/' ? '' : (at ?? ''),
      schemaPath: '#',
      keyword: 'nul',
      params: {},
      message: 'must not contain NUL characters (\\u0000)',
    }
    check.errors = at === undefined ? null : [error]
    return at === undefined
  }
  check.errors = null as ValidateFunction['errors']
  return check
}

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  withoutNul((httpPart === 'body' ? strict : coercing).compile(schema)) as ReturnType<
    FastifySchemaCompiler<object>
  >
