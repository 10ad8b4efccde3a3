// The browser entry point (also usable from Node.js with the `eventsource`
// package): subscribing to a hub.
export { subscribe, subscriptionUrl, parseData, Subscription, STATES } from './subscribe.js';
