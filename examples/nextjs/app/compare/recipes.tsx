'use client';
import { useEffect, useState } from 'react';
import { useSubscription } from 'tidings-client/react';
import { COMPARE } from '@/lib/topics';

/** The seed's client side: an EventSource on the route handler. */
function RouteHandlerSide() {
  const [updates, setUpdates] = useState<string[]>([]);
  const [running, setRunning] = useState(false);
  useEffect(() => {
    if (!running) return;
    const source = new EventSource('/api/stream');
    source.onmessage = (event) => setUpdates((now) => [...now, event.data]);
    // The handler ends its stream after five updates; EventSource would
    // open it again (and start over), so stop here.
    source.onerror = () => {
      source.close();
      setRunning(false);
    };
    return () => source.close();
  }, [running]);
  return (
    <section>
      <button onClick={() => { setUpdates([]); setRunning(true); }} disabled={running}>
        Run the route handler
      </button>
      <ul data-testid="route-handler-updates">
        {updates.map((update, i) => <li key={i}>{update}</li>)}
      </ul>
    </section>
  );
}

function TidingsSide({ hubUrl }: { hubUrl: string }) {
  const { events } = useSubscription<string>(hubUrl, { match: COMPARE, limit: 5 });
  return (
    <section>
      <button onClick={() => fetch('/api/compare', { method: 'POST' })}>Publish through tidings</button>
      <ul data-testid="tidings-updates">
        {events.map((event) => <li key={event.id}>{event.data}</li>)}
      </ul>
    </section>
  );
}

export function Recipes({ hubUrl }: { hubUrl: string }) {
  return (
    <div className="columns">
      <RouteHandlerSide />
      <TidingsSide hubUrl={hubUrl} />
    </div>
  );
}
