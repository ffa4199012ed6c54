import { after, before } from 'node:test'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from './env.ts'
import { stopServer } from './fleet.ts'
import { type Mosquitto, startMosquitto } from './mosquitto.ts'
import { type ServerProcess, startServer } from './process.ts'

export interface FixtureOptions {
  /** Mosquittos of the file's own (default 1). */
  brokers?: number
  /** Data directories for servers (default 1; replicas need one each). */
  dirs?: number
  /** The broker keeps its persistence directory across a restart (`restartBroker`). */
  restartableBroker?: boolean
  /** Set nothing up (a skipped file): e.g. `!realDatabaseUrl` for tests that need PostgreSQL. */
  skip?: boolean
}

export interface ServerFixture {
  /** The file's brokers, in order; `restartBroker` replaces the first one. */
  brokers: Mosquitto[]
  /** A schema of the file's own on the real PostgreSQL (TEST_DATABASE_URL), else undefined (PGlite). */
  schema: { url: string } | undefined
  /** The environment of a server on this fixture: data directory `dir`, all brokers, its own client id. */
  env(extra?: Record<string, string>, dir?: number): Record<string, string>
  /** Starts a server; whatever is still running after the tests is stopped. */
  start(env: Record<string, string>): Promise<ServerProcess>
  /** Stops the first broker, runs `whileDown`, and starts it again on the same port and persistence. */
  restartBroker(whileDown: () => Promise<void>): Promise<Mosquitto>
}

/**
 * The shared setup of the suites that spawn servers (kill -9, broker restart, database outage,
 * replicas, two brokers): Mosquittos on free ports, a schema of their own, data directories, and
 * the teardown of all of it, registered with node:test's before/after. Call at the top of a file.
 */
export function serverFixture(options: FixtureOptions = {}): ServerFixture {
  const dirs = Array.from({ length: options.dirs ?? 1 }, () => tempDir())
  const brokerDir = options.restartableBroker ? tempDir('mosquitto-') : undefined
  const servers: ServerProcess[] = []
  const fixture: ServerFixture = {
    brokers: [],
    schema: undefined,
    env: (extra = {}, dir = 0) => ({
      DATA_DIR: (dirs[dir] as { path: string }).path,
      MQTT_URL: fixture.brokers.map((b) => b.url).join(','),
      MQTT_CLIENT_ID: uniqueName('srv'),
      INGEST_FLUSH_MS: '100',
      ...(fixture.schema ? { DATABASE_URL: fixture.schema.url } : {}),
      ...extra,
    }),
    start: async (env) => {
      const server = await startServer(env)
      servers.push(server)
      return server
    },
    restartBroker: async (whileDown) => {
      const first = fixture.brokers[0] as Mosquitto
      await first.stop()
      await whileDown()
      fixture.brokers[0] = await startMosquitto(first.port, brokerDir?.path)
      return fixture.brokers[0]
    },
  }
  let schema: Awaited<ReturnType<typeof createSchema>> | undefined
  before(async () => {
    if (options.skip) return
    for (let i = 0; i < (options.brokers ?? 1); i++)
      fixture.brokers.push(await startMosquitto(undefined, i === 0 ? brokerDir?.path : undefined))
    if (realDatabaseUrl) schema = await createSchema(realDatabaseUrl)
    fixture.schema = schema
  })
  after(async () => {
    for (const server of servers) await stopServer(server)
    for (const broker of fixture.brokers) await broker.stop()
    await schema?.drop()
    for (const dir of dirs) dir.remove()
    brokerDir?.remove()
  })
  return fixture
}
