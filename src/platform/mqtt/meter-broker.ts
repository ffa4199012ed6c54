import type { FastifyInstance } from 'fastify'
import type { Config } from '../../config.ts'
import { withoutCredentials } from './hub.ts'

/** Where a meter connects: what the dashboard and the start-up banner show. */
export interface MeterBroker {
  /** The first MQTT_URL without credentials; null for the embedded broker (host = the server's). */
  url: string | null
  /** Port of the embedded broker's plain listener; null with external brokers. */
  port: number | null
  /** Port of the embedded broker's TLS listener (MQTT_TLS_PORT); null when there is none. */
  tls_port: number | null
  /** MQTT_DEVICE_AUTH: none, token (username = device id, password from the API) or mtls. */
  device_auth: 'token' | 'mtls' | 'none'
}

/** Call after the MQTT plugin started (the embedded broker's port is known only then). */
export function meterBroker(app: FastifyInstance, config: Config): MeterBroker {
  const external = config.MQTT_URL?.split(',')[0]
  return {
    url: external ? withoutCredentials(external) : null,
    port: external ? null : (app.embeddedBroker?.port ?? null),
    tls_port: external ? null : app.brokerTlsPort,
    device_auth: config.MQTT_DEVICE_AUTH as MeterBroker['device_auth'],
  }
}
