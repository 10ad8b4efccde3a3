import { hubUrl } from 'tidings-client/server';
import { ChatRoom } from './chat-room';

export const dynamic = 'force-dynamic';

export default function ChatPage() {
  return (
    <>
      <h1>Chat without WebSocket</h1>
      <p>
        Messages go up with a POST (a server action) and come down with Server-Sent Events from the hub. Most
        features said to &ldquo;need WebSocket&rdquo; need only this.
      </p>
      <ChatRoom hubUrl={hubUrl()} />
    </>
  );
}
