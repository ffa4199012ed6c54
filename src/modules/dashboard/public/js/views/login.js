import { ApiError, api } from '../api.js'
import { field, h, statusLine } from '../dom.js'
import { isAuthDisabled, signIn, takeFlash } from '../session.js'

/**
 * The role of a token the server knows: GET /api/session, or, where that route is not open to every
 * role, a harmless probe (acknowledging alert 0: 403 for a viewer, a 400 validation error otherwise).
 */
async function roleOf(token) {
  try {
    return (await api('/api/session', { token, quiet: true })).role
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error
  }
  try {
    await api('/api/alerts/0/acknowledge', { method: 'POST', token, quiet: true })
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return 'viewer'
    if (error instanceof ApiError && error.status === 400) return 'operator'
  }
  return null
}

function safeNext(next) {
  return next?.startsWith('#/') && !next.startsWith('#/login') ? next : '#/fleet'
}

/** Sign in with an API token (kept in sessionStorage for this tab only). */
export function loginView(root, { query, navigate }) {
  const next = safeNext(query.get('next'))
  if (isAuthDisabled()) {
    root.append(
      h(
        'section',
        { class: 'login panel' },
        h('h1', {}, 'Authentication is off'),
        h('p', {}, 'This server runs with AUTH_DISABLED=true: no token is needed.'),
        h('a', { class: 'button', href: next }, 'Open the dashboard'),
      ),
    )
    return
  }
  const flash = takeFlash()
  const input = h('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
    spellcheck: 'false',
  })
  const status = statusLine()
  status.el.id = 'login-status'
  const button = h('button', { type: 'submit' }, 'Sign in')
  async function submit(event) {
    event.preventDefault()
    const token = input.value.trim()
    if (!token) return status.error('Enter your API token.')
    button.disabled = true
    status.ok('Checking the token…')
    try {
      const role = await roleOf(token)
      signIn(token, role)
      navigate(next)
    } catch (error) {
      const text =
        error instanceof ApiError && error.status === 401
          ? 'This token was not accepted. Check it (no spaces) or ask an administrator for a new one.'
          : error.message
      status.error(text)
      input.setAttribute('aria-invalid', 'true')
      input.focus()
    } finally {
      button.disabled = false
    }
  }
  root.append(
    h(
      'section',
      { class: 'login panel', 'aria-labelledby': 'login-h' },
      h('h1', { id: 'login-h' }, 'Sign in'),
      flash ? h('p', { class: 'flash', role: 'status' }, flash) : null,
      h(
        'form',
        { onsubmit: submit, novalidate: true },
        field(
          'token',
          'API token',
          input,
          'A token from an administrator (POST /api/tokens), the server’s ADMIN_TOKEN, or on a first start the “bootstrap-admin” token printed once in the server log. It is kept only for this browser tab.',
        ),
        button,
        status.el,
      ),
    ),
  )
  input.focus()
}
