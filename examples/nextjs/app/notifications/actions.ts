'use server';
import { cookies } from 'next/headers';
import { redirect } from 'next/navigation';
import { expiredSubscriberCookie, publish, subscriberCookie } from 'tidings-client/server';
import { currentUser, endSession, startSession } from '@/lib/session';
import { notificationsOf } from '@/lib/topics';

const HOUR = 3600;

export async function signIn(form: FormData) {
  const user = String(form.get('user') ?? '').trim().toLowerCase();
  if (!/^[a-z0-9-]{1,32}$/.test(user)) return;
  await startSession(user, HOUR);
  // The hub reads this cookie from the browser's EventSource: a token that
  // lets this user, and only this user, read their private notifications.
  (await cookies()).set(await subscriberCookie({ topics: [notificationsOf(user)], subject: user, ttl: HOUR }));
  redirect('/notifications');
}

export async function signOut() {
  await endSession();
  (await cookies()).set(expiredSubscriberCookie());
  redirect('/notifications');
}

export async function notify(form: FormData) {
  const from = await currentUser();
  const to = String(form.get('to') ?? '').trim().toLowerCase();
  const text = String(form.get('text') ?? '').trim().slice(0, 280);
  if (!from || !to || !text) return;
  await publish({ topic: notificationsOf(to), private: true, data: { from, text } });
}
