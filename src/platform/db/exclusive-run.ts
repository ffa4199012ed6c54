import { type Kysely, sql } from 'kysely'
import type { Database } from './schema.ts'

/**
 * Runs a maintenance job (retention, compaction) on one replica at a time: a session advisory lock
 * per schema and job, held on the one connection the work uses (PGlite has only one), and the
 * outcome kept in maintenance_runs (the last run of each job). A replica that finds the lock taken
 * skips its run ('busy'); a replica that dies mid-run releases the lock with its session.
 * `record: false` runs a step of the job under its lock without counting as its run.
 */
export async function runExclusive<T extends object>(
  db: Kysely<Database>,
  job: string,
  replica: string,
  work: (conn: Kysely<Database>) => Promise<T>,
  { record: keep = true } = {},
): Promise<T | 'busy'> {
  return db.connection().execute(async (conn) => {
    const key = sql`hashtext(current_schema() || ${`:iot-meter:${job}`})`
    const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(${key}) as locked`.execute(
      conn,
    )
    if (!rows[0]?.locked) return 'busy' as const
    const started = new Date()
    try {
      const result = await work(conn)
      if (keep) await record(conn, job, replica, started, true, { ...result } as Record<string, unknown>)
      return result
    } catch (error) {
      if (keep)
        await record(conn, job, replica, started, false, { error: (error as Error).message }).catch(() => {})
      throw error
    } finally {
      await sql`select pg_advisory_unlock(${key})`.execute(conn)
    }
  })
}

async function record(
  db: Kysely<Database>,
  job: string,
  replica: string,
  started: Date,
  ok: boolean,
  result: Record<string, unknown>,
): Promise<void> {
  const values = { started_at: started, replica, ok, result: JSON.stringify(result) }
  await db
    .insertInto('maintenance_runs')
    .values({ job, ...values })
    .onConflict((oc) => oc.column('job').doUpdateSet({ ...values, finished_at: sql`now()` }))
    .execute()
}
