import { spawn } from 'node:child_process'
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'

/**
 * Backups of both engines, each with the engine's own consistent snapshot:
 * - PGlite: `dumpDataDir` after a CHECKPOINT. PGlite runs in the server's thread and the tar of
 *   its data directory is taken synchronously, between two statements: a crash-consistent copy
 *   (committed data, replayed from its WAL when loaded), taken while the server keeps running.
 * - PostgreSQL: `pg_dump` (custom format) of the app's schema: one repeatable-read snapshot, no
 *   lock that blocks the ingest, restorable into a newer PostgreSQL; pg_dump/pg_restore of the
 *   server's major version or newer must be installed where the command runs.
 */

/** gzip magic / pg_dump custom format magic. */
const GZIP = [0x1f, 0x8b]
const PGDMP = 'PGDMP'

export type BackupKind = 'pglite' | 'postgres'

export async function backupKindOf(file: string): Promise<BackupKind | undefined> {
  const head = (await readFile(file)).subarray(0, 5)
  if (head[0] === GZIP[0] && head[1] === GZIP[1]) return 'pglite'
  if (head.toString('latin1') === PGDMP) return 'postgres'
  return undefined
}

/** The running (or a freshly opened) embedded database, as a gzipped tar of its data directory. */
export async function pgliteSnapshot(pglite: PGlite): Promise<Buffer> {
  await pglite.query('checkpoint')
  const blob = await pglite.dumpDataDir('gzip')
  return Buffer.from(await blob.arrayBuffer())
}

/** Writes `data` to `file` atomically: a reader never sees half a backup. */
export function writeAtomically(file: string, data: Buffer): void {
  const tmp = `${file}.partial`
  writeFileSync(tmp, data)
  renameSync(tmp, file)
}

const pgliteDir = (dataDir: string) => join(dataDir, 'pglite')

/** PGlite writes postmaster.pid while a process has the directory open (removed on close). */
export const pgliteInUse = (dataDir: string) => existsSync(join(pgliteDir(dataDir), 'postmaster.pid'))

/** Offline backup of DATA_DIR/pglite (no server has it open). */
export async function backupPglite(dataDir: string, out: string): Promise<number> {
  const pglite = new PGlite(pgliteDir(dataDir))
  await pglite.waitReady
  try {
    const data = await pgliteSnapshot(pglite)
    writeAtomically(out, data)
    return data.length
  } finally {
    await pglite.close()
  }
}

/**
 * Replaces DATA_DIR/pglite with the backup's; the directory it replaces is kept beside it
 * (pglite.before-restore-<time>) until the restored one opened fine.
 */
export async function restorePglite(dataDir: string, file: string): Promise<string | undefined> {
  const dir = pgliteDir(dataDir)
  const aside = existsSync(dir)
    ? `${dir}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`
    : undefined
  if (aside) renameSync(dir, aside)
  try {
    const blob = new Blob([await readFile(file)], { type: 'application/x-gzip' })
    const pglite = new PGlite(dir, { loadDataDir: blob })
    await pglite.waitReady
    await pglite.query('select 1')
    await pglite.close()
    return aside
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    if (aside) renameSync(aside, dir)
    throw err
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString()
    })
    child.on('error', (err) => reject(new Error(`${command}: ${err.message}`)))
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} exited with ${code}: ${stderr.trim().slice(-2000)}`)),
    )
  })
}

/** The schema the app's URL works in (search_path in its options, else public). */
export async function currentSchema(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ schema: string }>('select current_schema() as schema')
    return rows[0]?.schema ?? 'public'
  } finally {
    await client.end()
  }
}

/** node-postgres reads "+" in the query as a space (form encoding); libpq does not: spell it %20. */
export function libpqUrl(url: string): string {
  const at = url.indexOf('?')
  return at < 0 ? url : url.slice(0, at) + url.slice(at).replace(/\+/g, '%20')
}

/** pg_dump of the app's schema (the whole database when it is `public`), custom format. */
export async function backupPostgres(url: string, out: string): Promise<void> {
  const schema = await currentSchema(url)
  const tmp = `${out}.partial`
  await run('pg_dump', [
    '--format=custom',
    '--no-owner',
    ...(schema === 'public' ? [] : [`--schema=${schema}`]),
    `--file=${tmp}`,
    `--dbname=${libpqUrl(url)}`,
  ])
  renameSync(tmp, out)
}

/**
 * Restores into the database of `url`: the app's schema is dropped and the backup's objects
 * recreated in ONE transaction (all or nothing), by psql from the SQL pg_restore writes. Not
 * `pg_restore --clean`: it drops a partition's inherited primary key on its own, which PostgreSQL
 * refuses (telemetry is partitioned by day). Stop the servers first: they would otherwise write
 * into tables being replaced.
 */
export async function restorePostgres(url: string, file: string): Promise<void> {
  const schema = await currentSchema(url)
  const sqlFile = `${file}.restore-${process.pid}.sql`
  try {
    await run('pg_restore', ['--no-owner', `--file=${sqlFile}`, file])
    const quoted = `"${schema.replace(/"/g, '""')}"`
    await run('psql', [
      '--no-psqlrc',
      '--quiet',
      '--single-transaction',
      '--set=ON_ERROR_STOP=1',
      `--dbname=${libpqUrl(url)}`,
      `--command=DROP SCHEMA IF EXISTS ${quoted} CASCADE`,
      // A dump of one schema creates it; a whole-database dump assumes public exists.
      ...(schema === 'public' ? ['--command=CREATE SCHEMA public'] : []),
      `--file=${sqlFile}`,
    ])
  } finally {
    rmSync(sqlFile, { force: true })
  }
}
