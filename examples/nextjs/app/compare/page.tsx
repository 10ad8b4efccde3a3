import { hubUrl } from 'tidings-client/server';
import { Recipes } from './recipes';

export const dynamic = 'force-dynamic';

const BENCHMARKS = '/benchmarks';

export default function ComparePage() {
  return (
    <>
      <h1>Two recipes for the same five updates</h1>
      <div className="columns">
        <section>
          <h2>An SSE route handler in Next.js</h2>
          <p>
            The seed article&apos;s recipe (<code>app/api/stream/route.ts</code>): the route handler keeps every
            subscriber&apos;s connection open inside the Next.js server.
          </p>
          <ul>
            <li>A serverless host bills the function, and cuts it at its maximum duration, for as long as a tab stays open.</li>
            <li>Compression and <code>rewrites()</code> buffer the stream unless it is marked <code>no-transform</code>.</li>
            <li>Each StrictMode double mount, and each tab, holds another connection on your app server.</li>
            <li>No history: a reconnecting browser misses what was sent meanwhile.</li>
          </ul>
        </section>
        <section>
          <h2>Publish to tidings, subscribe to the hub</h2>
          <p>
            The route handler (<code>app/api/compare/route.ts</code>) answers at once and publishes each update with
            one <code>publish()</code>; the browser&apos;s <code>EventSource</code> talks to the hub.
          </p>
          <ul>
            <li>Next.js holds no connection: it runs the same on a serverless host.</li>
            <li>Events have ids and history: a reconnecting browser gets what it missed.</li>
            <li>One connection per tab, shared by every component that subscribes.</li>
          </ul>
        </section>
      </div>
      <Recipes hubUrl={hubUrl()} />
      <h2>What it costs</h2>
      <table>
        <thead>
          <tr><th /><th>route handler in Next.js</th><th>tidings</th></tr>
        </thead>
        <tbody>
          <tr><td>memory per open subscriber</td><td>about 93 KiB</td><td>about 2 KiB</td></tr>
          <tr><td>server CPU per delivered event</td><td>about 77 µs</td><td>about 12 µs</td></tr>
          <tr><td>deliveries per second (2 cores)</td><td>saturates near 12,000</td><td>all 40,000 offered</td></tr>
        </tbody>
      </table>
      <p>
        2,000 subscribers on one topic at 20 events/s, measured with the project&apos;s load generator
        (the route handler made a broadcast: <code>bench/peers/next-route</code>); the method and the figures are in{' '}
        <a href={BENCHMARKS}>docs/benchmarks.md</a>.
      </p>
    </>
  );
}
