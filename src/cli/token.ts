import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config.ts'
import { ROLES, type Role, TOKEN_NOT_FOUND, TokenService } from '../modules/auth/index.ts'
import { connectDatabase, migrateToLatest } from '../platform/db/index.ts'

const USAGE = `npm run token -- <command>

  create --role viewer|operator|admin [--name NAME]   print a new API token (shown only once)
  list                                                tokens without their secrets
  revoke ID                                           revoke a token (a running server stops accepting it within 30 s)

Works on the server's database: DATABASE_URL, or the embedded one under DATA_DIR (stop the server first;
--force skips that check after a crash).`

const out = (line: string) => process.stdout.write(`${line}\n`)
class UsageError extends Error {}

type Command =
  | { command: 'help' }
  | { command: 'create'; role: Role; name: string; force: boolean }
  | { command: 'list'; force: boolean }
  | { command: 'revoke'; id: number; force: boolean }

function parse(argv: string[]): Command {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      role: { type: 'string' },
      name: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  })
  const [command, ...rest] = positionals
  if (values.help || !command) return { command: 'help' }
  if (command === 'create') {
    if (!ROLES.includes(values.role as Role)) throw new UsageError(`--role: one of ${ROLES.join(', ')}`)
    const name = values.name ?? 'cli'
    if (!/^[\x20-\x7e]{1,100}$/.test(name))
      throw new UsageError('--name: 1 to 100 printable ASCII characters')
    return { command, role: values.role as Role, name, force: values.force === true }
  }
  if (command === 'list') return { command, force: values.force === true }
  if (command === 'revoke') {
    const id = Number(rest[0])
    if (!Number.isInteger(id) || id < 1) throw new UsageError('revoke: the numeric id of a token (see list)')
    return { command, id, force: values.force === true }
  }
  throw new UsageError(`unknown command "${command}"`)
}

async function main(): Promise<number> {
  let args: Command
  let config: ReturnType<typeof loadConfig>
  try {
    args = parse(process.argv.slice(2))
    config = loadConfig()
  } catch (error) {
    process.stderr.write(`token: ${(error as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  if (args.command === 'help') {
    out(USAGE)
    return 0
  }
  // PGlite is single-process: opening its files while the server has them open would corrupt them.
  if (!config.DATABASE_URL && !args.force && existsSync(join(config.DATA_DIR, 'pglite', 'postmaster.pid'))) {
    process.stderr.write(
      `token: the embedded database under ${config.DATA_DIR} is open (is the server running?). ` +
        'Stop it first, or use POST /api/tokens; after a crash, pass --force.\n',
    )
    return 1
  }
  const { db } = await connectDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolMax: 1,
  })
  try {
    if (config.DB_MIGRATE_ON_START) await migrateToLatest(db)
    const tokens = new TokenService(db)
    if (args.command === 'create') {
      const created = await tokens.create(args.name, args.role)
      out(`created token ${created.id} "${created.name}" (role ${created.role}); shown only now, store it:`)
      out(created.token)
    } else if (args.command === 'list') {
      out('id\trole\tname\tcreated_at\tlast_used_at\trevoked_at')
      for (const t of await tokens.list()) {
        out([t.id, t.role, t.name, t.created_at, t.last_used_at ?? '-', t.revoked_at ?? '-'].join('\t'))
      }
    } else {
      const revoked = await tokens.revoke(args.id)
      out(`revoked token ${revoked.id} "${revoked.name}" at ${revoked.revoked_at}`)
    }
    return 0
  } catch (error) {
    if ((error as Error).message === TOKEN_NOT_FOUND) {
      process.stderr.write(`token: ${TOKEN_NOT_FOUND}\n`)
      return 1
    }
    throw error
  } finally {
    await db.destroy()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error)
    process.stderr.write(`token: failed: ${message}\n`)
    process.exitCode = 1
  },
)
