import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { ApiTokensTable } from '../../platform/db/schema.ts'
import type { Role } from './policy.ts'

export type TokenRow = Omit<Selectable<ApiTokensTable>, 'token_hash'>

const columns = ['id', 'name', 'role', 'created_at', 'last_used_at', 'revoked_at'] as const

export function insertToken(db: Kysely<Database>, token: { name: string; role: Role; token_hash: string }) {
  return db.insertInto('api_tokens').values(token).returning(columns).executeTakeFirstOrThrow()
}

export function listTokens(db: Kysely<Database>) {
  return db.selectFrom('api_tokens').select(columns).orderBy('id').execute()
}

export function findActiveByHash(db: Kysely<Database>, tokenHash: string) {
  return db
    .selectFrom('api_tokens')
    .select(['id', 'name', 'role'])
    .where('token_hash', '=', tokenHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
}

/** Revokes the token; undefined when no token has this id. Revoking twice keeps the first time. */
export function revokeToken(db: Kysely<Database>, id: number) {
  return db
    .updateTable('api_tokens')
    .set({ revoked_at: sql`coalesce(revoked_at, now())` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirst()
}

export async function touchToken(db: Kysely<Database>, id: number): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: sql`now()` }).where('id', '=', id).execute()
}

export async function hasActiveAdmin(trx: Transaction<Database>): Promise<boolean> {
  const row = await trx
    .selectFrom('api_tokens')
    .select('id')
    .where('role', '=', 'admin')
    .where('revoked_at', 'is', null)
    .limit(1)
    .executeTakeFirst()
  return row !== undefined
}

/** Serialises the first-start check across replicas sharing one database. */
export async function lockBootstrap(trx: Transaction<Database>): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('iot-meter:api_tokens:bootstrap'))`.execute(trx)
}
