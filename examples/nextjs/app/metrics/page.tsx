import { connection } from 'next/server';
import { hubUrl } from 'tidings-client/server';
import { keepPublishingMetrics } from '@/lib/metrics';
import { Dashboard } from './dashboard';

export default async function MetricsPage() {
  await connection(); // rendered per request: a view keeps the ticker going
  keepPublishingMetrics();
  return (
    <>
      <h1>Live metrics</h1>
      <p>This Next.js server&apos;s own CPU, memory and event-loop delay, published four times a second.</p>
      <Dashboard hubUrl={hubUrl()} />
    </>
  );
}
