import { type TSchema, Type } from 'typebox'
import { Value } from 'typebox/value'
import { InvalidInputError } from '../../platform/domain-errors.ts'

/** The commands of PROTOCOL.md a server may send. */
export const COMMAND_NAMES = [
  'update_config',
  'start_ota',
  'reboot',
  'factory_reset',
  'request_status',
] as const
export type CommandName = (typeof COMMAND_NAMES)[number]

// semver.org's reference expression, anchored.
const SEMVER =
  '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$'

const int = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum })

export const UpdateConfigParams = Type.Object(
  {
    sampling_cadence_ms: Type.Optional(int(100, 60000)),
    send_interval_s: Type.Optional(int(1, 3600)),
    hello_interval_s: Type.Optional(int(5, 3600)),
    brokers: Type.Optional(
      Type.Array(
        Type.Object(
          {
            host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:-]+$' }),
            port: int(1, 65535),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 5 },
      ),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const StartOtaParams = Type.Object(
  {
    fw_version: Type.String({ maxLength: 64, pattern: SEMVER }),
    fw_url: Type.String({ maxLength: 2048, pattern: '^https://[^\\s]+$' }),
    fw_sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }),
    fw_size_bytes: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  },
  { additionalProperties: false },
)

const NoParams = Type.Object({}, { additionalProperties: false })

const SCHEMAS: Record<CommandName, TSchema> = {
  update_config: UpdateConfigParams,
  start_ota: StartOtaParams,
  reboot: NoParams,
  factory_reset: NoParams,
  request_status: NoParams,
}

/** What each field must be, in words for the 400 answer. */
const RULES: Record<string, string> = {
  sampling_cadence_ms: 'an integer from 100 to 60000',
  send_interval_s: 'an integer from 1 to 3600',
  hello_interval_s: 'an integer from 5 to 3600',
  brokers: 'an array of 1 to 5 {host, port} objects',
  host: 'a host name or IP address',
  port: 'an integer from 1 to 65535',
  fw_version: 'a semantic version such as 2.1.0',
  fw_url: 'an https:// URL',
  fw_sha256: 'the SHA-256 of the image as 64 hexadecimal characters',
  fw_size_bytes: 'a positive integer',
}

const fieldPath = (instancePath: string) =>
  `params${instancePath
    .split('/')
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')}`

function describeError(cmd: CommandName, params: unknown): string | undefined {
  const error = [...Value.Errors(SCHEMAS[cmd], params)].find((e) => e.keyword !== 'boolean')
  if (!error) return undefined
  const at = fieldPath(error.instancePath)
  const p = error.params as { additionalProperties?: string[]; requiredProperties?: string[] }
  switch (error.keyword) {
    case 'additionalProperties': {
      const extra = p.additionalProperties?.[0] ?? '?'
      return SCHEMAS[cmd] === NoParams
        ? `${at}.${extra}: ${cmd} takes no parameters`
        : `${at}.${extra}: not a parameter of ${cmd}`
    }
    case 'required':
      return `${at}.${p.requiredProperties?.[0] ?? '?'}: required for ${cmd}`
    case 'minProperties':
      return `params: ${cmd} needs at least one of sampling_cadence_ms, send_interval_s, hello_interval_s, brokers`
    default: {
      const field =
        error.instancePath
          .split('/')
          .filter((s) => !/^\d*$/.test(s))
          .pop() ?? ''
      return `${at}: must be ${RULES[field] ?? error.message}`
    }
  }
}

/**
 * Checks the parameters of a command and returns them normalised (missing = `{}`, hash in lower
 * case). Throws a 400 whose message names the offending field, e.g. `params.fw_url: must be an https:// URL`.
 */
export function validateParams(cmd: CommandName, params: Record<string, unknown> | undefined) {
  const given = params ?? {}
  const problem = describeError(cmd, given)
  if (problem) throw new InvalidInputError(`Invalid parameters for ${cmd}: ${problem}`)
  if (cmd === 'start_ota') {
    let url: URL | undefined
    try {
      url = new URL(String(given.fw_url))
    } catch {}
    if (url?.protocol !== 'https:' || !url.hostname) {
      throw new InvalidInputError(`Invalid parameters for start_ota: params.fw_url: must be ${RULES.fw_url}`)
    }
    return { ...given, fw_sha256: String(given.fw_sha256).toLowerCase() }
  }
  return { ...given }
}
