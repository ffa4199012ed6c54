import type { MeterRegistration } from './fleet-plan.ts'

/** What plugin mode needs of the device registry (the devices module's facade fits). */
export interface DeviceDirectory {
  find(deviceId: string): Promise<unknown>
  create(registration: MeterRegistration): Promise<unknown>
}

/** Registers one meter; an already registered device is fine and left as it is. */
export type Registrar = (registration: MeterRegistration) => Promise<void>

/** Plugin mode: through the devices module's facade. */
export function facadeRegistrar(devices: DeviceDirectory): Registrar {
  return async (registration) => {
    if (await devices.find(registration.device_id)) return
    try {
      await devices.create(registration)
    } catch (error) {
      // Registered meanwhile (another replica, the API): fine. The simulator speaks MQTT only, so it
      // asks again instead of knowing the devices module's error classes.
      if (!(await devices.find(registration.device_id))) throw error
    }
  }
}

/** CLI mode: POST {api}/api/devices (with a bearer token when given); 201 created, 409 already there. */
export function httpRegistrar(apiBase: string, token?: string): Registrar {
  const url = new URL('/api/devices', apiBase).toString()
  return async (registration) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(registration),
    })
    if (res.status === 201 || res.status === 409) {
      await res.body?.cancel()
      return
    }
    throw new Error(`POST ${url} for ${registration.device_id}: ${res.status} ${await res.text()}`)
  }
}
