import { createServer } from 'node:net'
import type { Config } from './config.ts'

interface PortUse {
  port: number
  variable: string
  what: string
  fix: string
}

/** The ports this configuration listens on (port 0 = any free port, nothing to check). */
function portsOf(config: Config): PortUse[] {
  const uses: PortUse[] = [
    {
      port: config.PORT,
      variable: 'PORT',
      what: 'HTTP, the API and the dashboard',
      fix: 'stop the other server, or choose another port, e.g. PORT=8081',
    },
  ]
  if (!config.MQTT_URL) {
    uses.push({
      port: config.MQTT_BROKER_PORT,
      variable: 'MQTT_BROKER_PORT',
      what: 'the embedded MQTT broker',
      fix:
        'stop the other broker (often a system Mosquitto: sudo systemctl stop mosquitto), choose another ' +
        'port (MQTT_BROKER_PORT=1884), or use that broker instead (MQTT_URL=mqtt://127.0.0.1:1883)',
    })
    if (config.MQTT_TLS_PORT !== undefined) {
      uses.push({
        port: config.MQTT_TLS_PORT,
        variable: 'MQTT_TLS_PORT',
        what: 'the embedded broker over TLS',
        fix: 'stop the other process or choose another port, e.g. MQTT_TLS_PORT=8884',
      })
    }
  }
  return uses.filter((u) => u.port !== 0)
}

/** Binds and releases the port: the error a real listen would get, without side effects. */
function tryListen(port: number, host: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error))
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)))
  })
}

/**
 * Checks, before the database is opened or migrated, that every port the server will listen on is
 * free, so a busy port fails in milliseconds with its fix named. Returns one sentence per problem.
 */
export async function checkPorts(config: Config): Promise<string[]> {
  const problems: string[] = []
  const uses = portsOf(config)
  const seen = new Map<number, string>()
  for (const use of uses) {
    const other = seen.get(use.port)
    if (other) {
      problems.push(`${use.variable}=${use.port} is also ${other}: give each listener its own port`)
      continue
    }
    seen.set(use.port, use.variable)
    const error = await tryListen(use.port, config.HOST)
    if (!error) continue
    const why =
      error.code === 'EADDRINUSE'
        ? 'is already in use'
        : error.code === 'EACCES'
          ? 'needs privileges (ports below 1024)'
          : `cannot be opened (${error.code ?? error.message})`
    problems.push(`port ${use.port} on ${config.HOST} (${use.variable}, ${use.what}) ${why}: ${use.fix}`)
  }
  return problems
}
