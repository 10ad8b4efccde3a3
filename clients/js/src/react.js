'use client';
// The React hook: one shared connection per subscription, whatever the
// number of components using it, and StrictMode-safe.
//
// Connections live in a module-level store keyed by hub URL, matchers,
// event types, credentials and parser. Components attach through
// useSyncExternalStore; when the last one detaches, the connection closes
// a moment later, so StrictMode's mount-unmount-mount (and a quick
// remount) reuses it rather than opening a second one. What a component
// shows is a view kept beside the connection: the last `limit` events, or
// the state of a reducer. Views and the last event id outlive the
// connection, so a component that mounts again shows what it showed, and
// the new connection resumes after that id: nothing published meanwhile
// is missed.
import { useCallback, useSyncExternalStore } from 'react';
import { subscribe, subscriptionUrl } from './subscribe.js';

/** How long an unused connection stays open for a component to come back. */
const LINGER_MS = 1_000;

const connections = new Map();

/** Subscribes a client component; returns `{ state, events, value, lastEventId }`. */
export function useSubscription(hubUrl, options = {}) {
  const connection = connectionFor(hubUrl, options);
  const view = connection.viewFor(options);
  view.options = options; // the latest callbacks and reducer
  const attach = useCallback((notify) => connection.attach(view, notify), [connection, view]);
  return useSyncExternalStore(attach, () => view.snapshot, () => view.initial);
}

function connectionFor(hubUrl, options) {
  const key = JSON.stringify([
    subscriptionUrl(hubUrl, options),
    Boolean(options.withCredentials),
    [...(options.types ?? [])].sort(),
    String(options.parse ?? 'json'), // events are parsed once per connection
  ]);
  // Server rendering never attaches: nothing to keep.
  if (typeof window === 'undefined') return new Connection(hubUrl, options);
  let connection = connections.get(key);
  if (!connection) {
    connection = new Connection(hubUrl, options);
    connections.set(key, connection);
  }
  return connection;
}

/** What one kind of component shows of a subscription. */
class View {
  constructor(options, connection) {
    this.options = options;
    this.listeners = new Set();
    const value = options.reducer ? options.initialState : [];
    this.initial = Object.freeze({ state: 'connecting', events: value, value, lastEventId: connection.lastEventId });
    this.snapshot = Object.freeze({ ...this.initial, state: connection.state });
  }

  receive(event, lastEventId) {
    const { reducer, limit = 100 } = this.options;
    const value = reducer
      ? reducer(this.snapshot.value, event)
      : [...this.snapshot.value, event].slice(-limit);
    this.update({ value, events: value, lastEventId });
    this.options.onEvent?.(event);
  }

  update(change) {
    this.snapshot = Object.freeze({ ...this.snapshot, ...change });
    for (const notify of this.listeners) notify();
  }
}

class Connection {
  constructor(hubUrl, options) {
    this.hubUrl = hubUrl;
    this.options = options;
    this.views = new Map();
    this.attached = 0;
    this.subscription = null;
    this.closing = null;
    this.state = 'connecting';
    this.lastEventId = options.lastEventId ?? null;
  }

  /**
   * A list view per `limit`; a reducer view per reducer, told apart by its
   * source text unless `stateKey` names it.
   */
  viewFor(options) {
    const key = options.reducer
      ? `reducer:${options.stateKey ?? String(options.reducer)}`
      : `list:${options.limit ?? 100}`;
    let view = this.views.get(key);
    if (!view) {
      view = new View(options, this);
      this.views.set(key, view);
    }
    return view;
  }

  attach(view, notify) {
    view.listeners.add(notify);
    this.attached += 1;
    clearTimeout(this.closing);
    this.closing = null;
    if (!this.subscription) this.open();
    return () => {
      view.listeners.delete(notify);
      this.attached -= 1;
      if (this.attached === 0) this.closing = setTimeout(() => this.close(), LINGER_MS);
    };
  }

  open() {
    this.subscription = subscribe(this.hubUrl, {
      ...this.options,
      lastEventId: this.lastEventId,
      onEvent: (event) => {
        this.lastEventId = event.id ?? this.lastEventId;
        for (const view of this.views.values()) view.receive(event, this.lastEventId);
      },
      onStateChange: (state) => this.setState(state),
    });
    this.setState(this.subscription.state);
  }

  close() {
    this.subscription?.close();
    this.subscription = null;
    this.closing = null;
  }

  setState(state) {
    this.state = state;
    for (const view of this.views.values()) {
      view.update({ state });
      view.options.onStateChange?.(state);
    }
  }
}
