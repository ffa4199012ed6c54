import { Type } from 'typebox'

/** The database (platform db). */
export const databaseSettings = {
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL URL; unset = embedded PGlite' }),
  ),
  DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: 'pg pool size' }),
  DB_MIGRATE_ON_START: Type.Boolean({ default: true, description: 'run migrations at start' }),
}
