// A Node.js subscriber for the tests: the package's own subscribe() on the
// `eventsource` package, recording events and state changes.
import { EventSource } from 'eventsource';
import { subscribe } from '../../src/index.js';
import { eventually } from './hub.js';

/** An EventSource class that sends `Authorization: Bearer token`. */
export function withToken(token) {
  return class extends EventSource {
    constructor(url, init) {
      super(url, {
        ...init,
        fetch: (input, request) =>
          fetch(input, { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }),
      });
    }
  };
}

/** Subscribes and resolves once the first connection is open. */
export async function subscriber(hubUrl, options = {}) {
  const events = [];
  const states = [];
  const subscription = subscribe(hubUrl, {
    EventSource,
    ...options,
    onEvent: (event) => events.push(event),
    onStateChange: (state) => states.push(state),
  });
  await eventually(() => states.includes('open'), 10_000, 'the subscription to open');
  return {
    events,
    states,
    subscription,
    /** Resolves with the events once there are `n`. */
    received: (n, ms) => eventually(() => events.length >= n && events, ms, `${n} events (have ${events.length})`),
    close: () => subscription.close(),
  };
}

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
