'use client';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import type { TidingsEvent } from 'tidings-client';
import { useSubscription } from 'tidings-client/react';
import { ConnectionBadge } from '../connection-state';
import type { Progress } from '@/lib/jobs';
import { job } from '@/lib/topics';

type Log = { lines: string[]; percent: number; done: boolean };

function reduce(log: Log, event: TidingsEvent): Log {
  if (event.type === 'done') return { ...log, percent: 100, done: true };
  const { line, percent } = event.data as Progress;
  return { lines: [...log.lines, line], percent, done: false };
}

function Job({ hubUrl, id }: { hubUrl: string; id: string }) {
  const { state, value } = useSubscription(hubUrl, {
    match: job(id),
    types: ['progress', 'done'],
    // Everything the hub retains for this job's topic, then live events.
    lastEventId: 'earliest',
    reducer: reduce,
    initialState: { lines: [], percent: 0, done: false },
  });
  return (
    <>
      <ConnectionBadge state={state} />
      <progress max={100} value={value.percent} data-testid="progress" />
      <p>
        <span data-testid="percent">{value.percent}</span>% {value.done && <b data-testid="done">done</b>}
      </p>
      <pre className="log" data-testid="log">{value.lines.join('\n')}</pre>
    </>
  );
}

export function JobView({ hubUrl, id }: { hubUrl: string; id: string | null }) {
  const router = useRouter();
  const [starting, setStarting] = useState(false);
  async function start() {
    setStarting(true);
    const response = await fetch('/api/jobs', { method: 'POST' });
    const { id } = await response.json();
    router.replace(`/jobs?id=${id}`);
    setStarting(false);
  }
  return (
    <>
      <button onClick={start} disabled={starting}>Start a job</button>
      {id && <Job key={id} hubUrl={hubUrl} id={id} />}
    </>
  );
}
