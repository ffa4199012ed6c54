/** The signed-in state, kept in sessionStorage: it ends with the browser tab. */
const TOKEN_KEY = 'iot-meter.token'
const ROLE_KEY = 'iot-meter.role'
const FLASH_KEY = 'iot-meter.flash'
const ROLES = ['viewer', 'operator', 'admin']

let authDisabled = false

export const getToken = () => sessionStorage.getItem(TOKEN_KEY)

export function signIn(token, role) {
  sessionStorage.setItem(TOKEN_KEY, token)
  setRole(role)
}

export function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY)
  sessionStorage.removeItem(ROLE_KEY)
  if (message) sessionStorage.setItem(FLASH_KEY, message)
}

/** A message for the login page (why the user was signed out), read once. */
export function takeFlash() {
  const message = sessionStorage.getItem(FLASH_KEY)
  sessionStorage.removeItem(FLASH_KEY)
  return message
}

/** `viewer`, `operator`, `admin`, or null when unknown (then every control shows; the API decides). */
export const getRole = () => sessionStorage.getItem(ROLE_KEY)

export function setRole(role) {
  if (ROLES.includes(role)) sessionStorage.setItem(ROLE_KEY, role)
  else sessionStorage.removeItem(ROLE_KEY)
}

export const setAuthDisabled = (value) => {
  authDisabled = value
}
export const isAuthDisabled = () => authDisabled

/** Signed in, or no sign-in needed. */
export const isSignedIn = () => authDisabled || Boolean(getToken())

/** Operator actions (commands, acknowledgements) are shown unless the role is known to be viewer. */
export const canOperate = () => authDisabled || getRole() !== 'viewer'
