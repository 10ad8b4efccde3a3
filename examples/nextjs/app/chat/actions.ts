'use server';
import { publish } from 'tidings-client/server';
import { CHAT } from '@/lib/topics';

// Up with a POST (this server action), down with SSE from the hub.
export async function send(form: FormData) {
  const from = String(form.get('from') ?? '').trim().slice(0, 32);
  const text = String(form.get('text') ?? '').trim().slice(0, 500);
  if (!from || !text) return;
  await publish({ topic: CHAT, data: { from, text } });
}
