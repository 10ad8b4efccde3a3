// Sends the body as one event to the topic's open streams.
import { topics } from '../topics.js';

let nextId = 0;

export async function POST(request) {
  const topic = request.nextUrl.searchParams.get('topic') ?? '';
  const data = await request.text();
  const event = new TextEncoder().encode(`id: ${nextId++}\ndata: ${data}\n\n`);
  for (const controller of topics.get(topic) ?? []) {
    try {
      controller.enqueue(event);
    } catch {
      // closed meanwhile; its cancel() removes it
    }
  }
  return new Response(null, { status: 204 });
}
