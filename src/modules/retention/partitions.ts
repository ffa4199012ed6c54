import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'

/** Daily partitions of telemetry (migration 20261204T1802): `telemetry_pYYYYMMDD` holds that UTC day of t0. */
export const DAY_MS = 86_400_000
export const dayStart = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS
export const partitionName = (dayMs: number) =>
  `telemetry_p${new Date(dayMs).toISOString().slice(0, 10).replace(/-/g, '')}`

function dayOf(name: string): number | undefined {
  const m = /^telemetry_p(\d{4})(\d{2})(\d{2})$/.exec(name)
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined
}

/** The day partitions, oldest first. */
export async function listDayPartitions(db: Kysely<Database>): Promise<{ name: string; day: number }[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname::text as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'telemetry'::regclass`.execute(db)
  return rows
    .map((r) => ({ name: r.name, day: dayOf(r.name) }))
    .filter((p): p is { name: string; day: number } => p.day !== undefined)
    .sort((a, b) => a.day - b.day)
}

/**
 * Creates the partition of a day. Rows of that day that arrived before it existed sit in the
 * default partition: they are moved into the new table before it is attached, in one transaction
 * (PostgreSQL refuses a partition whose range the default partition still holds rows of).
 */
export async function createDayPartition(db: Kysely<Database>, day: number): Promise<'created' | 'moved'> {
  const name = sql.id(partitionName(day))
  const from = sql.lit(new Date(day).toISOString())
  const to = sql.lit(new Date(day + DAY_MS).toISOString())
  const { rows } = await sql<{ any: boolean }>`
    select exists (select 1 from telemetry_default where t0 >= ${from} and t0 < ${to}) as any`.execute(db)
  if (!rows[0]?.any) {
    await sql`create table if not exists ${name} partition of telemetry for values from (${from}) to (${to})`.execute(
      db,
    )
    return 'created'
  }
  await db.transaction().execute(async (trx) => {
    await sql`create table ${name} (like telemetry including defaults including constraints)`.execute(trx)
    await sql`with moved as (delete from telemetry_default where t0 >= ${from} and t0 < ${to} returning *)
      insert into ${name} select * from moved`.execute(trx)
    await sql`alter table telemetry attach partition ${name} for values from (${from}) to (${to})`.execute(
      trx,
    )
  })
  return 'moved'
}

/** Drops a whole day partition: expiry without deleting rows (no dead tuples, no vacuum). */
export async function dropPartition(db: Kysely<Database>, name: string): Promise<void> {
  await sql`drop table if exists ${sql.id(name)}`.execute(db)
}

/** Rows older than the cutoff that landed in the default partition (no day partition then). */
export async function purgeDefault(db: Kysely<Database>, cutoffMs: number): Promise<number> {
  const result =
    await sql`delete from telemetry_default where t0 < ${new Date(cutoffMs).toISOString()}::timestamptz`.execute(
      db,
    )
  return Number(result.numAffectedRows ?? 0)
}

/** Days (UTC) that rows in the default partition belong to, from `sinceMs` on. */
export async function lateDays(db: Kysely<Database>, sinceMs: number): Promise<number[]> {
  const { rows } = await sql<{ day: Date | string }>`
    select distinct date_trunc('day', t0, 'UTC') as day from telemetry_default
    where t0 >= ${new Date(sinceMs).toISOString()}::timestamptz`.execute(db)
  return rows.map((r) => new Date(r.day).getTime())
}
