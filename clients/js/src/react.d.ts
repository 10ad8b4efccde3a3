import type { ConnectionState, SubscribeOptions, TidingsEvent } from './index.js';

export interface SubscriptionSnapshot<T, V> {
  state: ConnectionState;
  /** The last `limit` events (without a reducer), or the reducer's state. */
  events: V;
  /** Same as `events`; the natural name when a reducer is given. */
  value: V;
  lastEventId: string | null;
}

export interface UseSubscriptionOptions<T> extends Omit<SubscribeOptions<T>, 'EventSource'> {
  /** Events kept, the latest last (default 100). */
  limit?: number;
}

export interface UseSubscriptionReducerOptions<T, V> extends UseSubscriptionOptions<T> {
  /** Folds every event into the state. */
  reducer: (state: V, event: TidingsEvent<T>) => V;
  initialState: V;
}

/**
 * Subscribes a client component. Components with the same hub URL,
 * matchers, types, credentials and `parse` share one connection, opened once
 * even under StrictMode and closed a second after the last unmounts;
 * a remount resumes after the last event received.
 */
export declare function useSubscription<T = unknown, V = unknown>(
  hubUrl: string,
  options: UseSubscriptionReducerOptions<T, V>,
): SubscriptionSnapshot<T, V>;
export declare function useSubscription<T = unknown>(
  hubUrl: string,
  options: UseSubscriptionOptions<T>,
): SubscriptionSnapshot<T, TidingsEvent<T>[]>;
