import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError } from './config-error.ts'
import { crossChecks } from './cross-checks.ts'
import { type Config, ConfigSchema } from './schema.ts'

/** Explains why a variable was refused: names it, what is allowed, and what was given. */
function describeProblem(schema: TSchema, name: string, given: unknown): string {
  const allowed = (schema as { enum?: unknown[] }).enum
  if (allowed) return `${name}: must be one of ${allowed.join(', ')} (got "${String(given)}")`
  const s = schema as Record<string, unknown>
  const rules: string[] = []
  if (s.type) rules.push(s.type === 'integer' ? 'an integer' : `a ${s.type}`)
  if (s.minimum !== undefined) rules.push(`>= ${s.minimum}`)
  if (s.maximum !== undefined) rules.push(`<= ${s.maximum}`)
  if (s.minLength !== undefined) rules.push(`at least ${s.minLength} characters`)
  if (s.pattern) rules.push(`matching ${s.pattern}`)
  return `${name}: must be ${rules.join(', ')} (got "${String(given)}")`
}

/** Reads, converts and validates the environment. Throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const value = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, structuredClone(raw)))
  if (Value.Check(ConfigSchema, value)) {
    const config = value as Config
    const problems = crossChecks(config)
    if (problems.length > 0) throw new ConfigError(problems)
    return Object.freeze(config)
  }
  const bad = new Set<string>()
  for (const error of Value.Errors(ConfigSchema, value)) bad.add(error.instancePath.replace(/^\//, ''))
  const properties = ConfigSchema.properties as Record<string, TSchema>
  throw new ConfigError(
    [...bad].map((name) => {
      const schema = properties[name]
      return schema ? describeProblem(schema, name, raw[name]) : `${name || 'environment'}: invalid`
    }),
  )
}
