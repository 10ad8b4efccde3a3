'use client';
import { useSubscription } from 'tidings-client/react';
import { ConnectionBadge } from '../connection-state';

type Notification = { from: string; text: string };

export function NotificationList({ hubUrl, topic }: { hubUrl: string; topic: string }) {
  // withCredentials: the EventSource sends the subscriber cookie to the hub.
  const { state, events } = useSubscription<Notification>(hubUrl, { match: topic, withCredentials: true });
  return (
    <>
      <ConnectionBadge state={state} />
      <ul className="entries" data-testid="notifications">
        {events.map((event) => (
          <li key={event.id}>
            <b>{event.data.from}</b>: {event.data.text}
          </li>
        ))}
      </ul>
    </>
  );
}
