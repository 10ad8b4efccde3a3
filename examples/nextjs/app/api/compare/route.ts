import { after } from 'next/server';
import { publish } from 'tidings-client/server';
import { COMPARE } from '@/lib/topics';

// The same five updates, the tidings way: this handler answers at once and
// publishes after the response; the browser holds its stream on the hub.
export async function POST() {
  after(async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await publish({ topic: COMPARE, data: `Update number ${i}` });
    }
  });
  return new Response(null, { status: 202 });
}
