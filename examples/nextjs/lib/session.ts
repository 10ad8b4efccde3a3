// A minimal signed-cookie session: who is signed in. A real app has its
// own auth; what matters here is that the server knows the user when it
// sets that user's subscriber cookie.
import { cookies } from 'next/headers';
import { jwtVerify, SignJWT } from 'jose';

const COOKIE = 'session';

function secret() {
  const value = process.env.SESSION_SECRET;
  if (!value) throw new Error('set SESSION_SECRET');
  return new TextEncoder().encode(value);
}

export async function currentUser(): Promise<string | null> {
  const token = (await cookies()).get(COOKIE)?.value;
  if (!token) return null;
  try {
    const { payload } = await jwtVerify(token, secret());
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}

export async function startSession(user: string, seconds: number) {
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setExpirationTime(`${seconds}s`)
    .sign(secret());
  (await cookies()).set({ name: COOKIE, value: token, httpOnly: true, sameSite: 'lax', path: '/', maxAge: seconds });
}

export async function endSession() {
  (await cookies()).delete(COOKIE);
}
