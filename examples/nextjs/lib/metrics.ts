// Publishes this Next.js server's own metrics four times a second while
// anyone looks at the dashboard (a minute after the last page view). On a
// serverless host the source would be a worker or the service being
// measured; the page would not change.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { publish } from 'tidings-client/server';
import { METRICS } from './topics';

export type Sample = { at: number; rssMiB: number; heapMiB: number; cpuPercent: number; loopDelayMs: number };

const INTERVAL_MS = 250;
const KEEP_RUNNING_MS = 60_000;

// Module state survives across requests in one server process; kept on
// globalThis so development reloads do not start a second ticker.
const ticker = ((globalThis as any).__tidingsMetrics ??= { timer: null, until: 0 }) as {
  timer: ReturnType<typeof setInterval> | null;
  until: number;
};

export function keepPublishingMetrics() {
  ticker.until = Date.now() + KEEP_RUNNING_MS;
  if (ticker.timer) return;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let cpu = process.cpuUsage();
  let last = performance.now();
  ticker.timer = setInterval(() => {
    if (Date.now() > ticker.until) {
      clearInterval(ticker.timer!);
      ticker.timer = null;
      delay.disable();
      return;
    }
    const now = performance.now();
    const used = process.cpuUsage(cpu);
    const memory = process.memoryUsage();
    const sample: Sample = {
      at: Date.now(),
      rssMiB: memory.rss / 2 ** 20,
      heapMiB: memory.heapUsed / 2 ** 20,
      cpuPercent: ((used.user + used.system) / 1000 / (now - last)) * 100,
      loopDelayMs: delay.mean / 1e6,
    };
    cpu = process.cpuUsage();
    last = now;
    delay.reset();
    publish({ topic: METRICS, data: sample }).catch((error) => console.error('metrics:', error.message));
  }, INTERVAL_MS);
}
