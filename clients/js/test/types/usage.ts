// Compiled (never run) by types.test.js: the declarations describe the API
// as the README uses it, and reject misuse.
import { publish, publisherToken, subscriberCookie, serializeCookie, linkHeader, PublishError } from 'tidings-client/server';
import { subscribe, type TidingsEvent } from 'tidings-client';
import { useSubscription } from 'tidings-client/react';

export async function server(): Promise<string> {
  const id: string = await publish({ topic: 'https://example.com/a', data: { n: 1 }, private: true, type: 't', retry: 10 });
  const token: string = await publisherToken({ generation: '07', topics: ['*'], ttl: null });
  const cookie = await subscriberCookie({ topics: ['https://example.com/a'], domain: 'example.com' });
  const header: string = serializeCookie(cookie) + linkHeader({ topic: 'https://example.com/a' });
  try {
    await publish({ topic: 'x' });
  } catch (error) {
    if (error instanceof PublishError) return `${error.status} ${error.detail}`;
  }
  // @ts-expect-error the generation is 07 or 08
  await publisherToken({ generation: '09' });
  return id + token + header;
}

export function browser(): () => void {
  const subscription = subscribe<{ n: number }>('https://hub.example.com/.well-known/mercure', {
    match: 'https://example.com/a',
    withCredentials: true,
    onEvent: (event: TidingsEvent<{ n: number }>) => console.log(event.data.n, event.id, event.type),
    onStateChange: (state) => console.log(state === 'reconnecting'),
  });
  return () => subscription.close();
}

export function Hook(): number {
  const list = useSubscription<{ n: number }>('https://hub.example.com/.well-known/mercure', { match: 'a', limit: 10 });
  const sum = useSubscription('https://hub.example.com/.well-known/mercure', {
    match: 'a',
    reducer: (total: number, event: TidingsEvent) => total + Number(event.text),
    initialState: 0,
  });
  const first: number | undefined = list.events[0]?.data.n;
  return (first ?? 0) + sum.value + (list.state === 'open' ? 1 : 0);
}
