import { Type } from 'typebox'

/** One of a few strings, with its default. */
export const oneOf = <const T extends string[]>(values: T, fallback: T[number], description: string) =>
  Type.Enum(values, { default: fallback, description })

/** A TCP port (0 = any free port). */
export const port = (fallback: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: fallback, description })
