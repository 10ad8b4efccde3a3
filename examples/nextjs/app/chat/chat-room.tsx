'use client';
import { useState } from 'react';
import { useSubscription } from 'tidings-client/react';
import { ConnectionBadge } from '../connection-state';
import { CHAT } from '@/lib/topics';
import { send } from './actions';

type Message = { from: string; text: string };

export function ChatRoom({ hubUrl }: { hubUrl: string }) {
  const { state, events } = useSubscription<Message>(hubUrl, { match: CHAT, limit: 200 });
  const [name, setName] = useState('');
  // A form action resets the form; the name is kept in state.
  async function post(form: FormData) {
    await send(form);
  }
  return (
    <>
      <ConnectionBadge state={state} />
      <ul className="entries" data-testid="messages">
        {events.map((event) => (
          <li key={event.id}>
            <b>{event.data.from}</b>: {event.data.text}
          </li>
        ))}
      </ul>
      <form action={post}>
        <input name="from" placeholder="your name" required maxLength={32} value={name} onChange={(e) => setName(e.target.value)} />
        <input name="text" placeholder="message" required maxLength={500} />
        <button type="submit">Send</button>
      </form>
    </>
  );
}
