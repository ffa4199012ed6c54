/** The release of this server (kept equal to package.json's version by test/app/openapi.test.ts). */
export const VERSION = '0.1.0'
