/** Connection states: `connecting` until the first connection opens, `open`, `reconnecting` after a cut, `closed` once closed. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';
export declare const STATES: readonly ConnectionState[];

/** An event as subscribers receive it. */
export interface TidingsEvent<T = unknown> {
  /** The event id (`lastEventId`); null when the hub sent none. */
  id: string | null;
  /** `message`, or the type it was published with. */
  type: string;
  /** The data, parsed as JSON when it is JSON (unless `parse` says otherwise). */
  data: T;
  /** The data as sent. */
  text: string;
}

export interface Matchers {
  /** Exact topics (`match`). */
  match?: string | string[];
  /** URL patterns (`match_urlpattern`), e.g. `https://example.com/books/:id`. */
  matchUrlPattern?: string | string[];
  /** Draft-07 selectors (`topic`): exact, `*`, or RFC 6570 URI templates. */
  topic?: string | string[];
}

export interface SubscribeOptions<T = unknown> extends Matchers {
  /** Send cookies (the subscriber cookie) to the hub: it must list this page's origin in --cors-origins. */
  withCredentials?: boolean;
  /** Start after this event id (`earliest`: everything the hub retains). */
  lastEventId?: string | null;
  /** Event types to receive besides `message` (EventSource only delivers the types listened for). */
  types?: string[];
  /** How to turn the data text into `data`: JSON when it parses (default), or your function; `false` keeps the text. */
  parse?: ((text: string) => T) | false;
  onEvent?: (event: TidingsEvent<T>) => void;
  onStateChange?: (state: ConnectionState) => void;
  /** Delays before reopening after an HTTP error ended the EventSource, in ms (doubling from min to max). */
  backoff?: { min?: number; max?: number };
  /** The EventSource class: the browser's by default; in Node.js, the `eventsource` package's. */
  EventSource?: new (url: string, init?: { withCredentials?: boolean }) => EventSource;
}

export declare class Subscription {
  /** The current state. */
  readonly state: ConnectionState;
  /** The id of the last event received: where a new connection resumes. */
  readonly lastEventId: string | null;
  /** Closes the connection for good. */
  close(): void;
}

/** Opens a subscription on the native EventSource; it resumes after the last event id on its own. */
export declare function subscribe<T = unknown>(hubUrl: string, options: SubscribeOptions<T>): Subscription;

/** The subscription URL for these matchers (and `last_event_id`). */
export declare function subscriptionUrl(hubUrl: string, options: Matchers & { lastEventId?: string | null }): string;

/** JSON when the text parses, the text otherwise. */
export declare function parseData(text: string): unknown;
