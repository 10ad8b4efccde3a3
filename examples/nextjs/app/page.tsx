import Link from 'next/link';

export default function Home() {
  return (
    <>
      <h1>Live features without holding a connection in Next.js</h1>
      <p>
        Every page here publishes from the Next.js server (a server action or a route handler, one{' '}
        <code>publish()</code> call) and subscribes from the browser straight to the tidings hub with{' '}
        <code>EventSource</code>. Next.js never holds a stream open, so it runs the same on a serverless host.
      </p>
      <ul>
        <li><Link href="/feed">Activity feed</Link>: a form whose server action publishes; every open tab sees the entry.</li>
        <li><Link href="/notifications">Notifications</Link>: private per user, through a subscriber cookie.</li>
        <li><Link href="/jobs">Job progress</Link>: a background job's log and progress bar; reload mid-job and nothing is lost.</li>
        <li><Link href="/metrics">Live metrics</Link>: a chart updated four times a second.</li>
        <li><Link href="/agent">AI agent</Link>: a simulated agent streams its steps and tokens.</li>
        <li><Link href="/chat">Chat</Link>: up with a POST, down with SSE; no WebSocket.</li>
        <li><Link href="/compare">Two recipes</Link>: an SSE route handler inside Next.js beside this one.</li>
      </ul>
    </>
  );
}
