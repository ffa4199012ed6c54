import { Type } from 'typebox'
import { IsoTime, Nullable } from '../../platform/schemas.ts'
import { ROLES } from './policy.ts'

export const RoleSchema = Type.Enum([...ROLES], {
  description: 'viewer: read; operator: + commands, acknowledgements, heartbeats; admin: everything',
})

export const TokenCreate = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 100,
      pattern: '^[\\x20-\\x7e]+$',
      description: 'who or what holds it',
    }),
    role: RoleSchema,
  },
  { additionalProperties: false },
)

export const TokenInfo = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  role: RoleSchema,
  created_at: IsoTime,
  last_used_at: Nullable(IsoTime),
  revoked_at: Nullable(IsoTime),
})

export const CreatedToken = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  role: RoleSchema,
  token: Type.String({ description: 'the bearer token; shown only in this answer' }),
  created_at: IsoTime,
})

export const TokenParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })
