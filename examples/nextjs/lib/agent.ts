// A simulated AI agent: it publishes each step it takes and then its
// answer token by token, as a model would stream them.
import { publish } from 'tidings-client/server';
import { agentRun } from './topics';

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export async function runAgent(id: string, prompt: string) {
  const topic = agentRun(id);
  const steps = ['Reading the question', 'Searching the notes', 'Weighing two answers', 'Writing the answer'];
  for (const step of steps) {
    await publish({ topic, type: 'step', data: step });
    await sleep(250);
  }
  const answer =
    `You asked: "${prompt}". Server-Sent Events carry this answer: Next.js publishes each token with one ` +
    `POST, and your browser reads them from the hub, so no function stays open while the agent thinks.`;
  for (const token of answer.split(/(?<= )/)) {
    await publish({ topic, type: 'token', data: token });
    await sleep(30);
  }
  await publish({ topic, type: 'done', data: '' });
}
