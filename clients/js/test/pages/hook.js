// The hook under test, in a development build of React (StrictMode runs
// effects twice only there). Bundled by hook.test.js with esbuild.
import { createElement as h, StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useSubscription } from '../../src/react.js';

// Counts the connections the page opens, and with what URL.
const Native = window.EventSource;
window.opened = [];
window.EventSource = class extends Native {
  constructor(url, init) {
    super(url, init);
    window.opened.push(String(url));
  }
};

const params = new URLSearchParams(location.search);
const hubUrl = params.get('hub');
const match = params.get('match');

function Feed() {
  const { state, events } = useSubscription(hubUrl, { match, limit: 5 });
  return h('div', null,
    h('p', { id: 'state' }, state),
    h('ol', { id: 'events' }, events.map((event) => h('li', { key: event.id }, String(event.data)))));
}

// A second component on the same subscription: it shares the connection.
function Count() {
  const { value } = useSubscription(hubUrl, {
    match,
    reducer: (count) => count + 1,
    initialState: 0,
  });
  return h('p', { id: 'count' }, value);
}

function App() {
  const [shown, setShown] = useState(true);
  window.toggle = () => setShown((now) => !now);
  return shown ? h('div', null, h(Feed), h(Count)) : h('p', { id: 'hidden' }, 'hidden');
}

createRoot(document.getElementById('root')).render(h(StrictMode, null, h(App)));
