import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** `im_` + 32 random bytes in base64url: 256 bits, recognisable in secret scanners and logs. */
const TOKEN_PATTERN = /^im_[A-Za-z0-9_-]{43}$/

export const newToken = (): string => `im_${randomBytes(32).toString('base64url')}`

export const looksLikeToken = (text: string): boolean => TOKEN_PATTERN.test(text)

/** What the database keeps instead of the token. */
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex')

/** Constant-time equality of two secrets of any length (compares their SHA-256 digests). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined
  const match = /^Bearer +([\x21-\x7e]{1,512})\s*$/i.exec(header)
  return match?.[1]
}
