import { hubUrl } from 'tidings-client/server';
import { JobView } from './job-view';

export const dynamic = 'force-dynamic';

export default async function JobsPage({ searchParams }: { searchParams: Promise<{ id?: string }> }) {
  const { id } = await searchParams;
  return (
    <>
      <h1>Job progress</h1>
      <p>
        A route handler starts a job that publishes log lines and a percentage. Reload in the middle: the page
        asks the hub for the job's whole history and carries on, without losing a line.
      </p>
      <JobView hubUrl={hubUrl()} id={id ?? null} />
    </>
  );
}
