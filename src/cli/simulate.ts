import pino from 'pino'
import { Registry } from 'prom-client'
import { type Config, ConfigError, loadConfig } from '../config.ts'
import {
  createSimulatorMetrics,
  Fleet,
  type FleetStats,
  httpRegistrar,
  simulatorBrokerUrls,
} from '../modules/simulator/index.ts'
import { type CliArgs, parseCliArgs, USAGE } from './simulate-args.ts'

/** The load generator: the same simulated meters as the plugin, against brokers and an API elsewhere. */
const out = (line: string) => process.stdout.write(`${line}\n`)
const fail = (message: string, code: number) => {
  process.stderr.write(`simulate: ${message}\n`)
  process.exit(code)
}

const total = (s: FleetStats) => Object.values(s.published).reduce((a, b) => a + b, 0)

async function checkApi(api: string, token?: string): Promise<void> {
  const url = new URL('/api/devices?limit=1', api)
  const headers = token ? { authorization: `Bearer ${token}` } : undefined
  const res = await fetch(url, { headers }).catch((error: Error) =>
    fail(`API ${api} unreachable: ${error.message}`, 1),
  )
  if (res && !res.ok) fail(`API ${url} answered ${res.status}`, 1)
  await res?.body?.cancel()
}

function progress(fleet: Fleet, startedAt: number): () => void {
  let lastSent = 0
  let lastAt = startedAt
  return () => {
    const s = fleet.stats()
    const now = Date.now()
    const sent = total(s)
    const rate = Math.round((sent - lastSent) / ((now - lastAt) / 1000))
    lastSent = sent
    lastAt = now
    const t = `${Math.round((now - startedAt) / 1000)}s`.padStart(6)
    out(
      `[${t}] connected ${s.connected}/${s.devices}  sent ${sent} (${rate}/s)  acked ${s.acked}  ` +
        `commands ${s.commands}${s.overflowed + s.failed > 0 ? `  lost ${s.overflowed + s.failed}` : ''}`,
    )
  }
}

function summary(fleet: Fleet, config: Config, args: CliArgs, seconds: number): void {
  const s = fleet.stats()
  const sent = total(s)
  const ac = fleet.meters.filter((m) => m.identity.kind === 'ac').length
  const byType = Object.entries(s.published)
    .map(([type, n]) => `${type} ${n}`)
    .join(', ')
  out(`summary: ran ${seconds.toFixed(1)} s at ×${args.rateMultiplier}, seed ${config.SIMULATOR_SEED}`)
  out(
    `  devices ${s.devices} (${s.devices - ac} DC, ${ac} AC) on ${fleet.meters[0]?.config.brokers.length ?? 0} broker(s)`,
  )
  out(`  messages sent ${sent} (${Math.round(sent / Math.max(seconds, 0.001))}/s): ${byType}`)
  out(`  broker acks ${s.acked}; publish errors ${s.failed}; dropped from full queues ${s.overflowed}`)
  out(`  commands handled ${s.commands}`)
}

async function main(): Promise<void> {
  let args: CliArgs
  let config: Config
  try {
    args = parseCliArgs(process.argv.slice(2))
    if (args.help) {
      out(USAGE)
      return
    }
    config = loadConfig(args.env)
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : (error as Error).message
    return fail(`${message}\n\n${USAGE}`, 2)
  }
  const log = pino({ level: config.LOG_LEVEL, base: { service: 'simulator' } }, pino.destination(2))
  if (args.api) await checkApi(args.api, args.token)
  const registry = new Registry()
  const brokerUrls = simulatorBrokerUrls(config)
  const fleet = new Fleet({
    config,
    brokerUrls,
    log,
    metrics: createSimulatorMetrics(registry),
    register: args.api ? httpRegistrar(args.api, args.token) : undefined,
    keyFor: args.commandKey ? () => args.commandKey : undefined,
    timing: { timeScale: args.rateMultiplier },
  })
  const startedAt = Date.now()
  out(
    `simulate: ${fleet.meters.length} meters → ${brokerUrls.join(', ')}` +
      `${args.api ? `, registering at ${args.api}` : ''}; ×${args.rateMultiplier}` +
      `${args.durationS > 0 ? `, ${args.durationS} s` : ', until Ctrl-C'}`,
  )
  const ticker = setInterval(progress(fleet, startedAt), args.progressS * 1000)
  const finished = new Promise<string>((resolve) => {
    if (args.durationS > 0) setTimeout(() => resolve('duration reached'), args.durationS * 1000).unref()
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  void fleet.start()
  const reason = await finished
  clearInterval(ticker)
  out(`stopping (${reason}): sending buffered data, offline status, disconnecting…`)
  await fleet.stop()
  summary(fleet, config, args, (Date.now() - startedAt) / 1000)
  if (args.printMetrics) out(await registry.metrics())
  // Everything is closed; if a stray handle still holds the loop, do not hang a CI job over it.
  setTimeout(() => process.exit(0), 5000).unref()
}

main().catch((error) => fail(`failed: ${error instanceof Error ? error.message : String(error)}`, 1))
