// A simulated background job: it publishes a line of its log and its
// progress at each step. Every event is kept in the hub's history, so a
// page that subscribes from `earliest` sees the whole log, even after a
// reload mid-job.
import { publish } from 'tidings-client/server';
import { job } from './topics';

export const STEPS = 20;
const STEP_MS = 300;

export type Progress = { step: number; line: string; percent: number };

export async function runJob(id: string) {
  const topic = job(id);
  for (let step = 1; step <= STEPS; step++) {
    await new Promise((done) => setTimeout(done, STEP_MS));
    const percent = Math.round((step / STEPS) * 100);
    const data: Progress = { step, line: `step ${step}/${STEPS}: processed batch ${step}`, percent };
    await publish({ topic, type: 'progress', data });
  }
  await publish({ topic, type: 'done', data: { percent: 100 } });
}
