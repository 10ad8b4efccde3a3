'use client';
import { useSubscription } from 'tidings-client/react';
import { ConnectionBadge } from '../connection-state';
import { FEED } from '@/lib/topics';

type Entry = { text: string; at: string };

export function FeedList({ hubUrl }: { hubUrl: string }) {
  const { state, events } = useSubscription<Entry>(hubUrl, { match: FEED, limit: 50 });
  return (
    <>
      <ConnectionBadge state={state} />
      <ul className="entries" data-testid="feed">
        {[...events].reverse().map((event) => (
          <li key={event.id}>
            {event.data.text} <small>{new Date(event.data.at).toLocaleTimeString()}</small>
          </li>
        ))}
      </ul>
    </>
  );
}
