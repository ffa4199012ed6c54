import { parseArgs } from 'node:util'

export const USAGE = `npm run simulate -- --mqtt URL[,URL…] [options]

  --mqtt URLS             broker(s) every meter publishes to (required), e.g. mqtt://host:1883,mqtt://host2:1883
  --api URL               register the meters first through POST {URL}/api/devices (409 = already there)
  --token TOKEN           bearer token for --api (an admin token: registering devices is admin-only)
  --devices N             meters to simulate (SIMULATOR_DEVICES)
  --rate-multiplier X     run the meters' clock X times faster: X times the messages, same content (default 1)
  --duration S            stop after S seconds (default: run until Ctrl-C)
  --seed N                physics and fault seed (SIMULATOR_SEED)
  --ac-share F            share of AC meters, 0..1 (SIMULATOR_AC_SHARE)
  --sampling-ms N         sampling cadence (SIMULATOR_SAMPLING_MS)
  --encoding E            telemetry as json or binary (SIMULATOR_ENCODING)
  --send-interval S       datagram interval (SIMULATOR_SEND_INTERVAL_S)
  --hello-interval S      hello interval (SIMULATOR_HELLO_INTERVAL_S)
  --prefix P              device id prefix (SIMULATOR_ID_PREFIX)
  --duplicate-rate F      fault knobs, 0..1 (SIMULATOR_DUPLICATE_RATE, _DROP_RATE, _REORDER_RATE)
  --drop-rate F
  --reorder-rate F
  --reboot-every S        reboot every S seconds of uptime (SIMULATOR_REBOOT_EVERY_S)
  --command-key HEX       verify every command's signature with this 64-hex key
  --progress-every S      progress line period (default 5)
  --print-metrics         print the simulator's Prometheus metrics at the end
  --log-level L           pino level on stderr (default warn)
  --help`

const ENV_OF = {
  mqtt: 'MQTT_URL',
  devices: 'SIMULATOR_DEVICES',
  seed: 'SIMULATOR_SEED',
  'ac-share': 'SIMULATOR_AC_SHARE',
  'sampling-ms': 'SIMULATOR_SAMPLING_MS',
  encoding: 'SIMULATOR_ENCODING',
  'send-interval': 'SIMULATOR_SEND_INTERVAL_S',
  'hello-interval': 'SIMULATOR_HELLO_INTERVAL_S',
  prefix: 'SIMULATOR_ID_PREFIX',
  'duplicate-rate': 'SIMULATOR_DUPLICATE_RATE',
  'drop-rate': 'SIMULATOR_DROP_RATE',
  'reorder-rate': 'SIMULATOR_REORDER_RATE',
  'reboot-every': 'SIMULATOR_REBOOT_EVERY_S',
  'log-level': 'LOG_LEVEL',
} as const

export interface CliArgs {
  help: boolean
  /** Configuration variables for loadConfig, validated there like the server's own. */
  env: Record<string, string>
  api?: string
  /** Bearer token for the API calls. */
  token?: string
  rateMultiplier: number
  durationS: number
  progressS: number
  commandKey?: string
  printMetrics: boolean
}

const positive = (name: string, text: string | undefined, fallback: number, max: number): number => {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value < 0 || value > max)
    throw new Error(`--${name}: a number from 0 to ${max}`)
  return value
}

/** Parses the command line; throws an Error naming the bad option. */
export function parseCliArgs(argv: string[]): CliArgs {
  const string = { type: 'string' } as const
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      ...Object.fromEntries(Object.keys(ENV_OF).map((k) => [k, string])),
      api: string,
      token: string,
      'rate-multiplier': string,
      duration: string,
      'progress-every': string,
      'command-key': string,
      'print-metrics': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  })
  const text = values as Record<string, string | boolean | undefined>
  const env: Record<string, string> = { LOG_LEVEL: 'warn' }
  for (const [flag, variable] of Object.entries(ENV_OF)) {
    const value = text[flag]
    if (typeof value === 'string') env[variable] = value
  }
  const help = text.help === true
  if (!help && !env.MQTT_URL) throw new Error('--mqtt is required')
  const api = text.api as string | undefined
  if (api !== undefined && !/^https?:\/\/\S+$/.test(api)) throw new Error('--api: an http(s) URL')
  const token = text.token as string | undefined
  if (token !== undefined && !/^[\x21-\x7e]{1,512}$/.test(token))
    throw new Error('--token: printable characters')
  const commandKey = text['command-key'] as string | undefined
  if (commandKey !== undefined && !/^[0-9a-fA-F]{64}$/.test(commandKey))
    throw new Error('--command-key: 64 hexadecimal characters')
  const rateMultiplier = positive('rate-multiplier', text['rate-multiplier'] as string | undefined, 1, 1000)
  if (rateMultiplier === 0) throw new Error('--rate-multiplier: greater than 0')
  return {
    help,
    env,
    api,
    token,
    rateMultiplier,
    durationS: positive('duration', text.duration as string | undefined, 0, 31_536_000),
    progressS: Math.max(1, positive('progress-every', text['progress-every'] as string | undefined, 5, 3600)),
    commandKey,
    printMetrics: text['print-metrics'] === true,
  }
}
