// JWT-shaped test strings, assembled at run time (the repository holds no key).
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
/** A JWT with this payload (the signature is filler: only the claims matter here). */
export const jwt = (payload: object) => `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}.${'s'.repeat(43)}`;
export const SERVICE_ROLE = jwt({ iss: 'supabase', ref: 'abcdefghijklmnop', role: 'service_role', iat: 1, exp: 2 });
export const ANON = jwt({ iss: 'supabase', ref: 'abcdefghijklmnop', role: 'anon', iat: 1, exp: 2 });
