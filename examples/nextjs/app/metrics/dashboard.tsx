'use client';
import type { TidingsEvent } from 'tidings-client';
import { useSubscription } from 'tidings-client/react';
import { ConnectionBadge } from '../connection-state';
import type { Sample } from '@/lib/metrics';
import { METRICS } from '@/lib/topics';

const POINTS = 120; // 30 seconds

function keep(samples: Sample[], event: TidingsEvent): Sample[] {
  return [...samples, event.data as Sample].slice(-POINTS);
}

function Chart({ samples, field, label, unit }: { samples: Sample[]; field: keyof Sample; label: string; unit: string }) {
  const values = samples.map((sample) => sample[field]);
  const top = Math.max(1, ...values) * 1.1;
  const points = values.map((value, i) => `${(i / (POINTS - 1)) * 600},${120 - (value / top) * 120}`).join(' ');
  const latest = values.at(-1);
  return (
    <figure>
      <figcaption>
        {label}: <b data-testid={`latest-${field}`}>{latest === undefined ? '–' : latest.toFixed(1)}</b> {unit}
      </figcaption>
      <svg viewBox="0 0 600 120" width="100%" height="120" role="img" aria-label={label}>
        <rect width="600" height="120" fill="#f6f8fa" />
        <polyline points={points} fill="none" stroke="#1f6feb" strokeWidth="2" />
      </svg>
    </figure>
  );
}

export function Dashboard({ hubUrl }: { hubUrl: string }) {
  const { state, value: samples } = useSubscription(hubUrl, { match: METRICS, reducer: keep, initialState: [] as Sample[] });
  return (
    <>
      <ConnectionBadge state={state} />
      <p>
        samples received: <span data-testid="samples">{samples.length}</span>
      </p>
      <Chart samples={samples} field="cpuPercent" label="CPU" unit="%" />
      <Chart samples={samples} field="rssMiB" label="Resident memory" unit="MiB" />
      <Chart samples={samples} field="loopDelayMs" label="Event-loop delay" unit="ms" />
    </>
  );
}
