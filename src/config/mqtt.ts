import { hostname } from 'node:os'
import { Type } from 'typebox'
import { oneOf, port } from './schema-helpers.ts'

/** MQTT: brokers, the embedded broker and device authentication (platform mqtt). */
export const mqttSettings = {
  MQTT_URL: Type.Optional(
    Type.String({
      pattern: '^(mqtts?|wss?|tcp)://[^,\\s]+(,(mqtts?|wss?|tcp)://[^,\\s]+)*$',
      description: 'broker URL(s), comma-separated; unset = embedded broker',
    }),
  ),
  MQTT_BROKER_PORT: port(1883, 'port of the embedded broker'),
  MQTT_CLIENT_ID: Type.String({
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    default: `iot-meter-${hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 40)}`,
    description: 'stable MQTT client id of this replica (persistent session)',
  }),
  MQTT_SHARED_GROUP: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_-]{1,64}$',
      description: 'MQTT v5 shared-subscription group (replicas)',
    }),
  ),
  MQTT_DEVICE_AUTH: oneOf(
    ['token', 'mtls', 'none'],
    'token',
    'how devices authenticate to the embedded broker',
  ),
  MQTT_AUTH_FAIL_DELAY_MS: Type.Integer({
    minimum: 0,
    maximum: 60_000,
    default: 1000,
    description:
      'embedded broker: a refused CONNECT gets its CONNACK (and is closed) only after this delay, so a client waiting for answers makes one guess per delay; 0 = at once',
  }),
  MQTT_AUTH_FAIL_HELD_MAX: Type.Integer({
    minimum: 0,
    maximum: 100_000,
    default: 1000,
    description: 'refused CONNECTs held in that delay at once; beyond, refused and closed at once',
  }),
  MQTT_AUTH_FAIL_MAX: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 30,
    description:
      'refused CONNECTs from one address (IPv6: its /64), or connections of one device closed for a forbidden publish, within MQTT_AUTH_FAIL_WINDOW_MS after which further CONNECTs from it are refused without checking credentials until the window ends; devices behind one NAT share an address; connected devices stay; 0 = off',
  }),
  MQTT_AUTH_FAIL_WINDOW_MS: Type.Integer({
    minimum: 1000,
    maximum: 86_400_000,
    default: 60_000,
    description: 'window of MQTT_AUTH_FAIL_MAX, counted from the first failure',
  }),
  MQTT_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 120_000,
    default: 5000,
    description: 'embedded broker: a connection whose CONNECT has not arrived by then is closed',
  }),
  MQTT_UNAUTH_PER_ADDRESS: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 64,
    description:
      'embedded broker: connections not yet authenticated at once per remote address (IPv6: per /64); more are closed at accept; devices behind one NAT share it; 0 = no limit',
  }),
  MQTT_TLS_PORT: Type.Optional(
    Type.Integer({
      description:
        'TLS listener of the embedded broker (needs MQTT_TLS_CERT, MQTT_TLS_KEY; MQTT_TLS_CA for mtls)',
      minimum: 0,
      maximum: 65535,
    }),
  ),
  MQTT_TLS_CERT: Type.Optional(
    Type.String({ minLength: 1, description: 'PEM file of the broker certificate' }),
  ),
  MQTT_TLS_KEY: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of its private key' })),
  MQTT_TLS_CA: Type.Optional(
    Type.String({ minLength: 1, description: 'PEM file of the CA that signs devices' }),
  ),
}
