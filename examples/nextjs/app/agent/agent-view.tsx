'use client';
import { useState } from 'react';
import type { TidingsEvent } from 'tidings-client';
import { useSubscription } from 'tidings-client/react';
import { ConnectionBadge } from '../connection-state';
import { agentRun } from '@/lib/topics';
import { startAgent } from './actions';

type Run = { steps: string[]; answer: string; done: boolean };

function reduce(run: Run, event: TidingsEvent): Run {
  const text = event.text;
  switch (event.type) {
    case 'step':
      return { ...run, steps: [...run.steps, text] };
    case 'token':
      return { ...run, answer: run.answer + text };
    default:
      return { ...run, done: true };
  }
}

function Transcript({ hubUrl, id }: { hubUrl: string; id: string }) {
  const { state, value } = useSubscription(hubUrl, {
    match: agentRun(id),
    types: ['step', 'token', 'done'],
    lastEventId: 'earliest', // the run may have started before this subscription
    parse: false,
    reducer: reduce,
    initialState: { steps: [], answer: '', done: false },
  });
  return (
    <>
      <ConnectionBadge state={state} />
      <ol data-testid="steps">
        {value.steps.map((step, i) => (
          <li key={i}>{step}</li>
        ))}
      </ol>
      <p data-testid="answer">{value.answer}</p>
      {value.done && <p data-testid="done">done</p>}
    </>
  );
}

export function AgentView({ hubUrl }: { hubUrl: string }) {
  const [id, setId] = useState<string | null>(null);
  async function ask(form: FormData) {
    setId(await startAgent(String(form.get('prompt') ?? '')));
  }
  return (
    <>
      <form action={ask}>
        <input name="prompt" placeholder="Ask the agent" required />
        <button type="submit">Ask</button>
      </form>
      {id && <Transcript key={id} hubUrl={hubUrl} id={id} />}
    </>
  );
}
