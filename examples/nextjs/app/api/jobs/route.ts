import { after } from 'next/server';
import { runJob } from '@/lib/jobs';

// Starts a job and answers at once with its id; the job runs after the
// response (on a serverless host, within the function's maxDuration).
export async function POST() {
  const id = crypto.randomUUID();
  after(() => runJob(id));
  return Response.json({ id }, { status: 202 });
}
