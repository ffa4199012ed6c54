import type { Aedes, AuthorizePublishHandler } from 'aedes'
import type { MqttHub } from '../../platform/mqtt/index.ts'
import { parseTopic } from './parse-message.ts'
import type { IngestPipeline } from './pipeline.ts'

/** Device → server topics; subscribed at QoS 1 (devices publish at QoS 2 to the broker). */
export const INGEST_TOPICS = ['telemetry', 'hello', 'status', 'command/ack', 'ota/status'].map(
  (t) => `iot/+/${t}`,
)

/**
 * External brokers: subscribe on every broker (MQTT v5 shared subscription when a group is set)
 * and hand each message to the pipeline; its PUBACK waits until the message is journaled.
 */
export function subscribeExternal(hub: MqttHub, pipeline: IngestPipeline, sharedGroup?: string): void {
  hub.onMessage((_link, packet, done) => {
    // Not copied here: the journal makes the one copy that is kept (see Journal.append).
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    pipeline.accept(packet.topic, payload, done)
  })
  const topics = INGEST_TOPICS.map((t) => (sharedGroup ? `$share/${sharedGroup}/${t}` : t))
  for (const link of hub.links) {
    // MQTT.js queues this until connected and subscribes again after a reconnect by itself.
    link.client.subscribe(topics, { qos: 1 }, (error) => {
      if (error) link.client.emit('error', error)
    })
  }
}

/**
 * Embedded broker: the devices are its clients, so their own PUBACK/PUBREC waits until the message
 * is journaled (aedes acknowledges a publish only after authorizePublish calls back). Wills (the
 * LWT) pass through here too.
 */
export function tapEmbedded(aedes: Aedes, pipeline: IngestPipeline): void {
  const previous = aedes.authorizePublish.bind(aedes) as AuthorizePublishHandler
  const handler: AuthorizePublishHandler = (client, packet, callback) => {
    previous(client, packet, (error) => {
      if (error) return callback(error)
      if (!parseTopic(packet.topic)) return callback(null)
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
      pipeline.accept(packet.topic, payload, () => callback(null))
    })
  }
  aedes.authorizePublish = handler
}
