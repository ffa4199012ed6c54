import { resolve } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.ts'
import { planFleet } from './modules/simulator/index.ts'
import { meterBroker } from './platform/mqtt/index.ts'
import { VERSION } from './version.ts'

/** What the banner says, also logged as fields of one JSON line when LOG_FORMAT=json. */
export interface StartupFacts {
  dashboard: string
  api_reference: string
  broker: string
  device_auth: string
  database: string
  data_dir: string
  simulator: string
  token_help: string
  /** Created at this start and shown only now; undefined when an admin token existed. */
  bootstrap_token?: string
}

/** http://0.0.0.0:8080 is where it listens, not where a browser goes. */
function browsable(address: string): string {
  return address.replace('//0.0.0.0:', '//localhost:').replace('//[::]:', '//localhost:')
}

function describeDatabase(config: Config): string {
  if (!config.DATABASE_URL) return `embedded PostgreSQL (PGlite) in ${resolve(config.DATA_DIR, 'pglite')}`
  const url = new URL(config.DATABASE_URL)
  return `PostgreSQL ${url.hostname}:${url.port || 5432}${url.pathname}`
}

function describeSimulator(config: Config): string {
  if (!config.SIMULATOR_ENABLED) return 'off (SIMULATOR_ENABLED=true runs simulated meters)'
  const ids = planFleet(config).map((m) => m.device_id)
  const shown = ids.length > 6 ? [...ids.slice(0, 5), `… ${ids.length - 5} more`] : ids
  return `on, ${ids.length} meter${ids.length === 1 ? '' : 's'}: ${shown.join(', ')}`
}

function describeToken(config: Config, bootstrapToken: string | undefined): string {
  if (config.AUTH_DISABLED)
    return 'none needed: AUTH_DISABLED=true (anyone who reaches the port may do anything)'
  if (bootstrapToken) return 'the admin token below was created at this first start and is shown only now'
  if (config.ADMIN_TOKEN) return 'ADMIN_TOKEN from the environment, or POST /api/tokens with it'
  return 'POST /api/tokens with an admin token, or (server stopped) npm run token -- create --role admin'
}

export function startupFacts(
  app: FastifyInstance,
  config: Config,
  address: string,
  bootstrapToken?: string,
): StartupFacts {
  const base = browsable(address)
  const broker = meterBroker(app, config)
  const host = new URL(base).hostname
  const tls = broker.tls_port ? `, TLS mqtts://${host}:${broker.tls_port}` : ''
  return {
    dashboard: `${base}/`,
    api_reference: `${base}/docs`,
    broker: broker.url ? `external ${broker.url}` : `embedded, mqtt://${host}:${broker.port}${tls}`,
    device_auth: broker.device_auth,
    database: describeDatabase(config),
    data_dir: resolve(config.DATA_DIR),
    simulator: describeSimulator(config),
    token_help: describeToken(config, bootstrapToken),
    ...(bootstrapToken ? { bootstrap_token: bootstrapToken } : {}),
  }
}

/** The human banner printed once start-up is complete (LOG_FORMAT=pretty). */
export function bannerText(facts: StartupFacts): string {
  const rows: [string, string][] = [
    ['Dashboard', facts.dashboard],
    ['API reference', facts.api_reference],
    ['MQTT broker', `${facts.broker} (device auth: ${facts.device_auth})`],
    ['Database', facts.database],
    ['Data directory', facts.data_dir],
    ['Simulator', facts.simulator],
    ['API token', facts.token_help],
  ]
  const lines = [
    '',
    `  IoT Meter ${VERSION} is ready`,
    '',
    ...rows.map(([label, value]) => `  ${`${label}:`.padEnd(16)}${value}`),
  ]
  if (facts.bootstrap_token) {
    lines.push(
      '',
      '  Admin token (store it now; it is not shown again):',
      '',
      `      ${facts.bootstrap_token}`,
      '',
      '  Use it:  export IOT_TOKEN=<the token above>',
      '           curl -H "Authorization: Bearer $IOT_TOKEN" ' + `${facts.dashboard}api/devices`,
    )
  }
  lines.push('', '  Stop with Ctrl+C. Meters: docs/PROTOCOL.md. Operations: docs/OPERATIONS.md.', '')
  return lines.join('\n')
}
