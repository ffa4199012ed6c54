import { type Kysely, sql } from 'kysely'
import { isEmbedded } from './connect.ts'
import type { Database } from './schema.ts'

/**
 * Runs a maintenance job (retention, compaction) on one replica at a time: a session advisory lock
 * per schema and job, held on the one connection the work uses (PGlite has only one), and the
 * outcome kept in maintenance_runs (the last run of each job). A replica that finds the lock taken
 * skips its run ('busy'); a replica that dies mid-run releases the lock with its session. The work
 * must not rely on one connection (on PGlite it gets the shared one, statement by statement).
 * `record: false` runs a step of the job under its lock without counting as its run.
 */
export async function runExclusive<T extends object>(
  db: Kysely<Database>,
  job: string,
  replica: string,
  work: (conn: Kysely<Database>) => Promise<T>,
  { record: keep = true } = {},
): Promise<T | 'busy'> {
  const run = { job, replica, keep }
  if (isEmbedded(db)) return runEmbedded(db, run, work)
  return db.connection().execute(async (conn) => {
    const key = sql`hashtext(current_schema() || ${`:iot-meter:${job}`})`
    const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(${key}) as locked`.execute(
      conn,
    )
    if (!rows[0]?.locked) return 'busy' as const
    try {
      return await recorded(conn, run, work)
    } finally {
      await sql`select pg_advisory_unlock(${key})`.execute(conn)
    }
  })
}

interface Run {
  job: string
  replica: string
  keep: boolean
}

/** Runs the work; its outcome goes into maintenance_runs unless `keep` is false. */
async function recorded<T extends object>(
  db: Kysely<Database>,
  { job, replica, keep }: Run,
  work: (conn: Kysely<Database>) => Promise<T>,
): Promise<T> {
  const started = new Date()
  try {
    const result = await work(db)
    if (keep) await record(db, job, replica, started, true, { ...result } as Record<string, unknown>)
    return result
  } catch (error) {
    if (keep)
      await record(db, job, replica, started, false, { error: (error as Error).message }).catch(() => {})
    throw error
  }
}

/** Jobs running now, per embedded database. */
const running = new WeakMap<Kysely<Database>, Set<string>>()

/**
 * On PGlite only this process opens the database, so no other replica can run the job: a run in
 * progress here is the only one to wait for. And the work must not hold PGlite's single
 * connection for the whole run (a compaction of many hours held the ingest's writes for a minute
 * in a soak): its statements and transactions take turns with everyone else's.
 */
async function runEmbedded<T extends object>(
  db: Kysely<Database>,
  run: Run,
  work: (conn: Kysely<Database>) => Promise<T>,
): Promise<T | 'busy'> {
  const jobs = running.get(db) ?? new Set<string>()
  running.set(db, jobs)
  if (jobs.has(run.job)) return 'busy'
  jobs.add(run.job)
  try {
    return await recorded(db, run, work)
  } finally {
    jobs.delete(run.job)
  }
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
