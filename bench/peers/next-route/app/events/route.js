// The seed's route handler, holding every subscriber's stream open in the
// Next.js server.
import { topics } from '../topics.js';

export const dynamic = 'force-dynamic';

export async function GET(request) {
  const topic = request.nextUrl.searchParams.get('topic') ?? '';
  let subscriber;
  const stream = new ReadableStream({
    start(controller) {
      subscriber = controller;
      if (!topics.has(topic)) topics.set(topic, new Set());
      topics.get(topic).add(controller);
      controller.enqueue(new TextEncoder().encode(':\n\n'));
    },
    cancel() {
      const subscribers = topics.get(topic);
      subscribers?.delete(subscriber);
      if (subscribers?.size === 0) topics.delete(topic);
    },
  });
  return new Response(stream, {
    headers: {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache, no-transform',
      'Connection': 'keep-alive',
    },
  });
}
