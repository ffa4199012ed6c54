import { type Static, Type } from 'typebox'

export const MqttSecret = Type.Object({
  device_id: Type.String(),
  username: Type.String({ description: 'the MQTT username: the device_id (also the client id)' }),
  password: Type.String({
    pattern: '^[A-Za-z0-9_-]{43}$',
    description: '32 random bytes, base64url; shown only in this answer — the server keeps its SHA-256',
  }),
})
export type MqttSecret = Static<typeof MqttSecret>
