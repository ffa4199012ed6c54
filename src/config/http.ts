import { Type } from 'typebox'
import { oneOf, port } from './schema-helpers.ts'

/** Process, HTTP and HTTP security (server, module auth). */
export const httpSettings = {
  PORT: port(8080, 'HTTP port'),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'HTTP listen address' }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino log level'),
  LOG_FORMAT: Type.Optional(
    Type.Enum(['pretty', 'json'], {
      description:
        'pretty: one readable line per event; json: pino JSON lines. Unset: pretty when stdout is a terminal',
    }),
  ),
  DATA_DIR: Type.String({
    minLength: 1,
    default: './data',
    description: 'embedded database, journal, archive',
  }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({
    description:
      'how long a graceful close (draining the journal into the stores) may take before the process exits',
    minimum: 100,
    maximum: 120000,
    default: 10000,
  }),
  AUTH_DISABLED: Type.Boolean({
    default: false,
    description: 'turn off HTTP authentication (trusted labs only)',
  }),
  ADMIN_TOKEN: Type.Optional(
    Type.String({ minLength: 16, maxLength: 256, description: 'bootstrap admin token' }),
  ),
  METRICS_TOKEN: Type.Optional(
    Type.String({ minLength: 16, maxLength: 256, description: 'protects /metrics' }),
  ),
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated allowed origins' })),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 600, description: '0 = off' }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({
    description: 'window of RATE_LIMIT_MAX',
    minimum: 100,
    maximum: 3_600_000,
    default: 60_000,
  }),
  BODY_LIMIT_BYTES: Type.Integer({
    description: 'largest HTTP request body',
    minimum: 1024,
    maximum: 100 * 1024 * 1024,
    default: 1024 * 1024,
  }),
}
