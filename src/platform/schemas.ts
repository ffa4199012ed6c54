import { type TSchema, Type } from 'typebox'

/** Schema pieces every module's routes share. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'what went wrong, in words a person can act on' }),
    code: Type.Optional(
      Type.String({
        description: 'a stable code for programs (docs/API.md "Errors"): not_found, conflict, ...',
      }),
    ),
  },
  { additionalProperties: true },
)
export const MessageBody = Type.Object({ message: Type.String() })
export const IsoTime = Type.String({ format: 'date-time' })
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

/** The error answers a route can give, by status. */
export const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, ErrorBody])) as Record<number, typeof ErrorBody>

export const toIso = (value: Date | string | null | undefined): string | null =>
  value == null ? null : new Date(value).toISOString()
