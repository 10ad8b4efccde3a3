'use server';
import { after } from 'next/server';
import { runAgent } from '@/lib/agent';

/** Starts a run and returns its id at once; the agent works after the response. */
export async function startAgent(prompt: string): Promise<string> {
  const id = crypto.randomUUID();
  after(() => runAgent(id, prompt.slice(0, 200)));
  return id;
}
