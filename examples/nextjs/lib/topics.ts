// The topics this app publishes to. Topics are IRIs naming what changed;
// they need not resolve to anything.
const APP = 'https://nextjs.tidings.example';

export const FEED = `${APP}/feed`;
export const METRICS = `${APP}/metrics`;
export const CHAT = `${APP}/chat`;
export const COMPARE = `${APP}/compare`;
export const notificationsOf = (user: string) => `${APP}/users/${encodeURIComponent(user)}/notifications`;
export const job = (id: string) => `${APP}/jobs/${id}`;
export const agentRun = (id: string) => `${APP}/agents/${id}`;
