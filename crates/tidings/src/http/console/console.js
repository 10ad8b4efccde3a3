// The tidings console. It reads the hub through the endpoints any client
// uses, with the tokens its user types in (kept in memory, never stored).
// Everything from the hub or the user reaches the page as text
// (textContent, attribute values), never as markup.
'use strict';

const meta = (name) => document.querySelector(`meta[name="tidings-${name}"]`).content;
const HUB_PATH = meta('hub-path');
const STATS_ACCESS = meta('stats-access');
const STATS_PATH = meta('stats-path');
const SUBSCRIPTIONS_PATH = meta('subscriptions-path');
const $ = (id) => document.getElementById(id);

/** Events kept in memory for filtering; events in the page at most. */
const KEPT = 2000;
const SHOWN = 200;
/** Five minutes of one-second samples. */
const HISTORY = 300;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function setState(node, text, kind) {
  node.textContent = text;
  node.classList.toggle('bad', kind === 'bad');
  node.classList.toggle('good', kind === 'good');
}

/** The reason of a refused request: its problem document's detail. */
async function problemText(response) {
  const text = await response.text().catch(() => '');
  try {
    const problem = JSON.parse(text);
    return `${response.status} ${problem.title ?? ''}: ${problem.detail ?? text}`;
  } catch {
    return `${response.status} ${response.statusText}${text ? ': ' + text : ''}`;
  }
}

// ---- Server-Sent Events over fetch, so a token can go in a header ----

/** Reads `body` as text/event-stream, calling `onEvent` for each event and
 * `onId` for every id field (an id alone is the stream's cursor). */
async function readEvents(body, onEvent, onId, onRetry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let type = '';
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // A trailing CR may be the first half of CRLF: wait for the rest.
    const cut = buffer.endsWith('\r') ? buffer.length - 1 : buffer.length;
    const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
    buffer = lines.pop() + buffer.slice(cut);
    for (const line of lines) {
      if (line === '') {
        if (id !== null) onId(id);
        if (data.length) onEvent({ id: id ?? '', type: type || 'message', data: data.join('\n') });
        data = [];
        type = '';
        id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'data') data.push(text);
      else if (field === 'event') type = text;
      else if (field === 'id' && !text.includes('\0')) id = text;
      else if (field === 'retry' && /^\d+$/.test(text)) onRetry(Number(text));
    }
  }
}

/** Follows an event stream, reconnecting with Last-Event-ID like
 * EventSource does; a refusal (4xx) is final. Returns a closer. */
function follow(url, { token, onOpen, onEvent, onState, onRefused }) {
  const controller = new AbortController();
  let closed = false;
  let lastId = null;
  let retry = 2000;
  (async () => {
    while (!closed) {
      const headers = { Accept: 'text/event-stream' };
      if (token) headers.Authorization = `Bearer ${token}`;
      if (lastId !== null) headers['Last-Event-ID'] = lastId;
      let response;
      try {
        response = await fetch(url, { headers, signal: controller.signal, cache: 'no-store', credentials: 'omit' });
      } catch {
        if (closed) return;
        onState('reconnecting…');
        await sleep(retry);
        continue;
      }
      if (response.status >= 400 && response.status < 500) {
        onRefused(await problemText(response));
        return;
      }
      if (!response.ok) {
        onState(`reconnecting… (${response.status})`);
        await sleep(retry);
        continue;
      }
      onOpen(response);
      try {
        await readEvents(response.body, onEvent, (id) => { lastId = id; }, (ms) => { retry = ms; });
      } catch {
        // Cut off: reconnect below.
      }
      if (closed) return;
      onState('reconnecting…');
      await sleep(retry);
    }
  })();
  return () => {
    closed = true;
    controller.abort();
  };
}

// ---- Live overview ----

const series = { subscribers: [], subscriptions: [], published: [], delivered: [], latency: [], slow: [] };
let lastSlowTotal = null;

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const precise = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** A figure with its unit, or a dash when a node does not tell it. */
function figure(value, format, unit) {
  return value === null || value === undefined ? '–' : `${format.format(value)}${unit}`;
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${decimal.format(n)} ${units[unit]}`;
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

function card(name) {
  return document.querySelector(`.card[data-stat="${name}"]`);
}

function plot(name, value) {
  const points = series[name];
  points.push(value ?? 0);
  if (points.length > HISTORY) points.shift();
  const line = card(name).querySelector('polyline');
  const top = Math.max(...points, 1e-9);
  // The first minute fills a one-minute chart, which then widens to five.
  const width = Math.max(points.length, 60);
  const step = 300 / (width - 1);
  const offset = width - points.length;
  line.setAttribute(
    'points',
    points.map((v, i) => `${((offset + i) * step).toFixed(1)},${(38 - (v / top) * 36).toFixed(1)}`).join(' '),
  );
}

function show(name, text) {
  card(name).querySelector('.value').textContent = text;
}

function render(sample) {
  $('uptime').textContent = duration(sample.uptime_s);
  $('version').textContent = sample.version;
  show('subscribers', integer.format(sample.subscribers));
  plot('subscribers', sample.subscribers);
  show('subscriptions', integer.format(sample.subscriptions));
  plot('subscriptions', sample.subscriptions);
  show('published', decimal.format(sample.published_per_s));
  plot('published', sample.published_per_s);
  show('delivered', decimal.format(sample.delivered_per_s));
  plot('delivered', sample.delivered_per_s);
  show('latency', sample.publish_ms_mean === null ? '–' : precise.format(sample.publish_ms_mean));
  card('latency').querySelector('.unit').textContent =
    sample.publish_ms_max === null
      ? 'ms, mean over the last second (no publish)'
      : `ms, mean over the last second; slowest ${precise.format(sample.publish_ms_max)} ms`;
  plot('latency', sample.publish_ms_mean);
  show('slow', integer.format(sample.slow_disconnects_total));
  plot('slow', lastSlowTotal === null ? 0 : sample.slow_disconnects_total - lastSlowTotal);
  lastSlowTotal = sample.slow_disconnects_total;
  const history = sample.history;
  show('history', integer.format(history.events));
  const bounds = [];
  if (history.retain_events !== null) bounds.push(`${integer.format(history.retain_events)} events`);
  if (history.retain_bytes !== null) bounds.push(bytes(history.retain_bytes));
  if (history.retain_age_s !== null) bounds.push(duration(history.retain_age_s));
  card('history').querySelector('.unit').textContent = `events kept, ${bytes(history.bytes)}`;
  card('history').querySelector('.detail').textContent = bounds.length ? `retained up to ${bounds.join(', ')}` : '';
  $('log-kind').textContent = history.log === 'local' ? 'History: kept by this hub.' : `Shared log: ${history.log}`;
  const rows = sample.nodes.map((node) => {
    const row = el('tr');
    row.append(
      el('td', 'mono', node.this ? `${node.id} (this node)` : node.id),
      el('td', node.state === 'ready' || node.state === 'alive' ? '' : 'bad', node.state),
      el('td', '', figure(node.lag, integer, ' events')),
      el('td', '', figure(node.subscribers, integer, '')),
      el('td', '', figure(node.published_per_s, decimal, '/s')),
      el('td', '', figure(node.delivered_per_s, decimal, '/s')),
      el('td', '', node.seen_s_ago === null ? 'now' : `${decimal.format(node.seen_s_ago)} s ago`),
    );
    return row;
  });
  $('nodes').tBodies[0].replaceChildren(...rows);
}

let closeStats = null;

function watchStats(token) {
  const state = $('stats-state');
  if (closeStats) closeStats();
  closeStats = follow(STATS_PATH, {
    token,
    onOpen: () => setState(state, 'live', 'good'),
    onState: (text) => setState(state, text),
    onRefused: (reason) => {
      setState(state, `Statistics refused: ${reason}`, 'bad');
      $('stats-auth').hidden = false;
    },
    onEvent: (event) => {
      let sample;
      try {
        sample = JSON.parse(event.data);
      } catch {
        return;
      }
      setState(state, `live, updated ${new Date(sample.time_ms).toLocaleTimeString()}`, 'good');
      render(sample);
    },
  });
}

function startOverview() {
  const state = $('stats-state');
  if (STATS_ACCESS === 'off') {
    setState(state, 'The statistics stream is off on this hub (--stats off).');
    return;
  }
  $('stats-auth').addEventListener('submit', (e) => {
    e.preventDefault();
    watchStats($('stats-token').value.trim());
  });
  if (STATS_ACCESS === 'token') {
    $('stats-auth').hidden = false;
    setState(state, 'This hub shows its statistics to a token that grants them: enter one.');
    return;
  }
  watchStats('');
}

// ---- Subscribe inspector ----

const MATCHER_KINDS = ['match', 'match_urlpattern', 'topic'];

function addMatcher(kind = 'match', value = '') {
  const row = el('div', 'matcher');
  const select = el('select');
  select.setAttribute('aria-label', 'Matcher kind');
  for (const name of MATCHER_KINDS) {
    const option = el('option', '', name);
    option.value = name;
    select.append(option);
  }
  select.value = kind;
  const input = el('input');
  input.setAttribute('aria-label', 'Matcher');
  input.spellcheck = false;
  input.autocomplete = 'off';
  input.value = value;
  const remove = el('button', '', 'Remove');
  remove.type = 'button';
  remove.addEventListener('click', () => {
    if ($('matchers').children.length > 1) row.remove();
  });
  row.append(select, input, remove);
  $('matchers').append(row);
}

const inspector = {
  close: null,
  token: '',
  /** Received events, oldest first, at most KEPT. */
  kept: [],
  /** Events received since the last frame. */
  fresh: [],
  paused: false,
  missedWhilePaused: 0,
  received: 0,
  /** Details (topics, private) by event id. */
  details: new Map(),
  wanted: new Set(),
  scheduled: false,
};

function matches(event, filter) {
  if (!filter) return true;
  const details = inspector.details.get(event.id);
  const haystack = [event.id, event.type, event.data, ...(details ? details.topics : [])].join('\n').toLowerCase();
  return haystack.includes(filter);
}

function pretty(data) {
  const trimmed = data.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.stringify(JSON.parse(trimmed), null, 2);
    } catch {
      // Not JSON after all: shown as sent.
    }
  }
  return data;
}

function eventNode(event) {
  const item = el('li', 'event');
  item.dataset.id = event.id;
  const line = el('div', 'meta');
  line.append(el('span', 'id', event.id || '(no id)'), el('span', 'type', event.type));
  const time = el('time', '', event.at.toLocaleTimeString());
  time.dateTime = event.at.toISOString();
  line.append(time);
  const topics = el('div', 'topics', 'topics: …');
  item.append(line, topics, el('pre', 'data', pretty(event.data)));
  fillDetails(item, inspector.details.get(event.id));
  return item;
}

function fillDetails(item, details) {
  if (!details) return;
  const topics = item.querySelector('.topics');
  topics.textContent = details.topics.length ? `topics: ${details.topics.join('  ·  ')}` : 'topics: (not retained)';
  const line = item.querySelector('.meta');
  if (details.private && !line.querySelector('.badge')) line.append(el('span', 'badge', 'private'));
}

function countText() {
  const shown = $('events').children.length;
  let text = `${integer.format(inspector.received)} received, ${shown} shown (newest ${SHOWN} at most)`;
  if (inspector.paused) text += `; paused, ${integer.format(inspector.missedWhilePaused)} new`;
  $('event-count').textContent = text;
}

/** Renders what arrived since the last frame: one DOM update per frame,
 * however many events came. */
function flush() {
  inspector.scheduled = false;
  const fresh = inspector.fresh;
  inspector.fresh = [];
  if (!inspector.paused) {
    const filter = $('filter').value.trim().toLowerCase();
    const shown = fresh.filter((event) => matches(event, filter)).slice(-SHOWN);
    const list = $('events');
    const nodes = shown.reverse().map(eventNode);
    list.prepend(...nodes);
    while (list.children.length > SHOWN) list.lastElementChild.remove();
    for (const event of shown) want(event.id);
  }
  countText();
}

function rerender() {
  const filter = $('filter').value.trim().toLowerCase();
  const shown = [];
  for (let i = inspector.kept.length - 1; i >= 0 && shown.length < SHOWN; i -= 1) {
    if (matches(inspector.kept[i], filter)) shown.push(inspector.kept[i]);
  }
  $('events').replaceChildren(...shown.map(eventNode));
  for (const event of shown) want(event.id);
  countText();
}

function received(event) {
  event.at = new Date();
  inspector.received += 1;
  inspector.kept.push(event);
  if (inspector.kept.length > KEPT) {
    const gone = inspector.kept.splice(0, inspector.kept.length - KEPT);
    for (const old of gone) inspector.details.delete(old.id);
  }
  if (inspector.paused) inspector.missedWhilePaused += 1;
  inspector.fresh.push(event);
  if (inspector.fresh.length > SHOWN) inspector.fresh.splice(0, inspector.fresh.length - SHOWN);
  if (!inspector.scheduled) {
    inspector.scheduled = true;
    requestAnimationFrame(flush);
  }
}

/** Asks the hub for the topics and private flag of shown events, a few
 * dozen per request, as a subscriber with the inspector's token. */
function want(id) {
  if (!id || inspector.details.has(id)) return;
  inspector.wanted.add(id);
}

async function fetchDetails() {
  for (;;) {
    await sleep(300);
    if (!inspector.wanted.size) continue;
    const ids = [...inspector.wanted].slice(0, 64);
    for (const id of ids) inspector.wanted.delete(id);
    const query = new URLSearchParams(ids.map((id) => ['id', id]));
    const headers = inspector.token ? { Authorization: `Bearer ${inspector.token}` } : {};
    let found = [];
    try {
      const response = await fetch(`${HUB_PATH}/events?${query}`, { headers, credentials: 'omit', cache: 'no-store' });
      if (!response.ok) continue;
      found = (await response.json()).events;
    } catch {
      continue;
    }
    const byId = new Map(found.map((details) => [details.id, details]));
    for (const id of ids) {
      const details = byId.get(id) ?? { id, topics: [], private: false };
      inspector.details.set(id, details);
      for (const item of $('events').children) {
        if (item.dataset.id === id) fillDetails(item, details);
      }
    }
  }
}

function subscribe(e) {
  e.preventDefault();
  stopSubscription();
  const state = $('subscribe-state');
  const params = new URLSearchParams();
  for (const row of $('matchers').children) {
    const value = row.querySelector('input').value.trim();
    if (value) params.append(row.querySelector('select').value, value);
  }
  if (![...params.keys()].length) {
    setState(state, 'Give at least one matcher.', 'bad');
    return;
  }
  const resume = $('resume').value.trim();
  if (resume) params.append('last_event_id', resume);
  inspector.token = $('subscribe-token').value.trim();
  const description = [...params].filter(([name]) => name !== 'last_event_id').map(([name, value]) => `${name}=${value}`).join(', ');
  setState(state, 'connecting…');
  $('unsubscribe').disabled = false;
  $('pause').disabled = false;
  inspector.close = follow(`${HUB_PATH}?${params}`, {
    token: inspector.token,
    onOpen: (response) => {
      const from = response.headers.get('Mercure-Last-Event-ID');
      setState(state, `subscribed: ${description}${from ? ` (replaying after ${from})` : ''}`, 'good');
    },
    onState: (text) => setState(state, text),
    onRefused: (reason) => {
      setState(state, `Refused: ${reason}`, 'bad');
      $('unsubscribe').disabled = true;
    },
    onEvent: received,
  });
}

function stopSubscription() {
  if (inspector.close) {
    inspector.close();
    inspector.close = null;
    setState($('subscribe-state'), 'not subscribed');
  }
  $('unsubscribe').disabled = true;
}

function startInspector() {
  addMatcher('match', 'https://example.com/books/1');
  $('add-matcher').addEventListener('click', () => addMatcher('match_urlpattern', ''));
  $('subscribe-form').addEventListener('submit', subscribe);
  $('unsubscribe').addEventListener('click', stopSubscription);
  $('pause').addEventListener('click', () => {
    inspector.paused = !inspector.paused;
    $('pause').textContent = inspector.paused ? 'Resume' : 'Pause';
    inspector.missedWhilePaused = 0;
    if (!inspector.paused) rerender();
    countText();
  });
  $('clear').addEventListener('click', () => {
    inspector.kept = [];
    inspector.fresh = [];
    inspector.received = 0;
    inspector.missedWhilePaused = 0;
    inspector.details.clear();
    $('events').replaceChildren();
    countText();
  });
  $('filter').addEventListener('input', rerender);
  fetchDetails();
}

// ---- Publish ----

async function publish(e) {
  e.preventDefault();
  const result = $('publish-result');
  const form = new URLSearchParams();
  for (const topic of $('publish-topics').value.split('\n')) {
    if (topic.trim()) form.append('topic', topic.trim());
  }
  form.append('data', $('publish-data').value);
  if ($('publish-private').checked) form.append('private', 'on');
  for (const [field, name] of [['publish-id', 'id'], ['publish-type', 'type'], ['publish-retry', 'retry']]) {
    const value = $(field).value.trim();
    if (value) form.append(name, value);
  }
  const token = $('publish-token').value.trim();
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (token) headers.Authorization = `Bearer ${token}`;
  setState(result, 'publishing…');
  try {
    const response = await fetch(HUB_PATH, { method: 'POST', headers, body: form, credentials: 'omit' });
    if (response.ok) setState(result, `Published: ${await response.text()}`, 'good');
    else setState(result, `Refused: ${await problemText(response)}`, 'bad');
  } catch (error) {
    setState(result, `The hub could not be reached: ${error}`, 'bad');
  }
}

// ---- Active subscriptions ----

const active = new Map();
let closeSubscriptions = null;

function renderSubscriptions() {
  const rows = [...active.values()].map((doc) => {
    const row = el('tr');
    const kind = doc.match_type ?? (doc.topic !== undefined ? 'topic (draft-07)' : '');
    row.append(
      el('td', 'mono', doc.subscriber ?? ''),
      el('td', '', kind),
      el('td', 'mono', doc.match ?? doc.topic ?? ''),
      el('td', 'mono', doc.payload === undefined ? '' : JSON.stringify(doc.payload)),
    );
    return row;
  });
  $('subscription-list').tBodies[0].replaceChildren(...rows);
  setState($('subscriptions-state'), `${active.size} active`, 'good');
}

function apply(doc) {
  if (!doc || typeof doc.id !== 'string') return;
  if (doc.active) active.set(doc.id, doc);
  else active.delete(doc.id);
}

async function watchSubscriptions(e) {
  e.preventDefault();
  if (closeSubscriptions) closeSubscriptions();
  const state = $('subscriptions-state');
  const token = $('subscriptions-token').value.trim();
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let response;
  try {
    response = await fetch(SUBSCRIPTIONS_PATH, { headers, credentials: 'omit', cache: 'no-store' });
  } catch (error) {
    setState(state, `The hub could not be reached: ${error}`, 'bad');
    return;
  }
  if (!response.ok) {
    setState(state, `Refused: ${await problemText(response)}`, 'bad');
    return;
  }
  const list = await response.json();
  const link = /last-event-id="([^"]*)"/.exec(response.headers.get('Link') ?? '');
  const cursor = link ? link[1] : list.lastEventID;
  active.clear();
  for (const doc of list.subscriptions ?? []) apply(doc);
  renderSubscriptions();
  const params = new URLSearchParams([['match_urlpattern', `${SUBSCRIPTIONS_PATH}/*`]]);
  if (cursor) params.append('last_event_id', cursor);
  closeSubscriptions = follow(`${HUB_PATH}?${params}`, {
    token,
    onOpen: () => renderSubscriptions(),
    onState: (text) => setState(state, text),
    onRefused: (reason) => setState(state, `Refused: ${reason}`, 'bad'),
    onEvent: (event) => {
      try {
        apply(JSON.parse(event.data));
      } catch {
        return;
      }
      renderSubscriptions();
    },
  });
}

function startSubscriptions() {
  if (!SUBSCRIPTIONS_PATH) {
    $('subscriptions-off').hidden = false;
    return;
  }
  $('subscriptions-form').hidden = false;
  $('subscriptions-form').addEventListener('submit', watchSubscriptions);
}

startOverview();
startInspector();
$('publish-form').addEventListener('submit', publish);
startSubscriptions();
