'use server';
import { publish } from 'tidings-client/server';
import { FEED } from '@/lib/topics';

export async function postEntry(form: FormData) {
  const text = String(form.get('text') ?? '').trim().slice(0, 280);
  if (!text) return;
  await publish({ topic: FEED, data: { text, at: new Date().toISOString() } });
}
