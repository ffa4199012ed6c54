import { statSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type Config, ConfigError, loadConfig } from '../config.ts'
import {
  backupKindOf,
  backupPglite,
  backupPostgres,
  pgliteInUse,
  restorePglite,
  restorePostgres,
  writeAtomically,
} from '../platform/db/backup.ts'

const USAGE = `npm run backup -- --out FILE [--server URL] [--token TOKEN]
npm run restore -- FILE [--force]

backup   PostgreSQL (DATABASE_URL): pg_dump of the app's schema, while the servers run.
         Embedded PGlite (DATA_DIR): while the server runs, asks it for a snapshot
         (GET /api/admin/backup on --server, default http://127.0.0.1:PORT, with --token or
         ADMIN_TOKEN, an admin token); when it is stopped, reads DATA_DIR/pglite itself.
restore  Stop every server first. PostgreSQL: pg_restore of the backup's objects in one
         transaction. PGlite: replaces DATA_DIR/pglite (the old one is kept beside it);
         --force after a crash left DATA_DIR/pglite/postmaster.pid behind.`

const out = (line: string) => process.stdout.write(`${line}\n`)
class UsageError extends Error {}

type Command =
  | { command: 'backup'; out: string; server?: string; token?: string }
  | { command: 'restore'; file: string; force: boolean }

function parse(argv: string[]): Command | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      out: { type: 'string' },
      server: { type: 'string' },
      token: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  })
  const [command, file] = positionals
  if (values.help || !command) return 'help'
  if (command === 'backup') {
    if (!values.out) throw new UsageError('backup: --out FILE is required')
    return { command, out: values.out, server: values.server, token: values.token }
  }
  if (command === 'restore') {
    if (!file) throw new UsageError('restore: the backup FILE is required')
    return { command, file, force: values.force === true }
  }
  throw new UsageError(`unknown command "${command}"`)
}

/** The running server's snapshot of its embedded database. */
async function backupFromServer(config: Config, args: Extract<Command, { command: 'backup' }>) {
  const base = args.server ?? `http://127.0.0.1:${config.PORT}`
  const token = args.token ?? config.ADMIN_TOKEN
  const res = await fetch(`${base.replace(/\/+$/, '')}/api/admin/backup`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  }).catch((err: Error) => {
    throw new Error(
      `the embedded database under ${config.DATA_DIR} is open (postmaster.pid) but no server answers at ${base} (${err.message}); ` +
        'give --server URL, or stop the process (after a crash, start and stop the server once)',
    )
  })
  if (!res.ok)
    throw new Error(`${base}/api/admin/backup answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
  const data = Buffer.from(await res.arrayBuffer())
  writeAtomically(args.out, data)
  return data.length
}

async function main(): Promise<number> {
  let args: Command | 'help'
  let config: Config
  try {
    args = parse(process.argv.slice(2))
    config = loadConfig()
  } catch (error) {
    process.stderr.write(`backup: ${(error as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  if (args === 'help') {
    out(USAGE)
    return 0
  }
  if (args.command === 'backup') {
    if (config.DATABASE_URL) {
      await backupPostgres(config.DATABASE_URL, args.out)
      out(
        `backup of PostgreSQL written to ${args.out} (${statSync(args.out).size} bytes, pg_dump custom format)`,
      )
    } else {
      const bytes = pgliteInUse(config.DATA_DIR)
        ? await backupFromServer(config, args)
        : await backupPglite(config.DATA_DIR, args.out)
      out(`backup of the embedded database written to ${args.out} (${bytes} bytes)`)
    }
    return 0
  }
  const kind = await backupKindOf(args.file)
  const engine = config.DATABASE_URL ? 'postgres' : 'pglite'
  if (kind !== engine) {
    process.stderr.write(
      `restore: ${args.file} is ${kind ? `a ${kind} backup` : 'no backup of this tool'}, the configured database is ${engine}\n`,
    )
    return 1
  }
  if (config.DATABASE_URL) {
    await restorePostgres(config.DATABASE_URL, args.file)
    out(`restored ${args.file} into PostgreSQL`)
    return 0
  }
  // PGlite is single-process: replacing its files under a running server would corrupt them.
  if (pgliteInUse(config.DATA_DIR) && !args.force) {
    process.stderr.write(
      `restore: the embedded database under ${config.DATA_DIR} is open (is the server running?). Stop it first; after a crash, pass --force.\n`,
    )
    return 1
  }
  const aside = await restorePglite(config.DATA_DIR, args.file)
  out(
    `restored ${args.file} into ${config.DATA_DIR}/pglite${aside ? `; the previous one is kept at ${aside}` : ''}`,
  )
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error)
    process.stderr.write(`backup: failed: ${message}\n`)
    process.exitCode = 1
  },
)
