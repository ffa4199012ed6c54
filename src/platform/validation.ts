import { Ajv, type Options } from 'ajv'
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

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? strict : coercing).compile(schema) as ReturnType<FastifySchemaCompiler<object>>
