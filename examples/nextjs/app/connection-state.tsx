import type { ConnectionState } from 'tidings-client';

/** The subscription's state, for people and for the end-to-end tests. */
export function ConnectionBadge({ state }: { state: ConnectionState }) {
  return (
    <p className="state" data-state={state} data-testid="state">
      hub connection: {state}
    </p>
  );
}
