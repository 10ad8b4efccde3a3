// Open streams per topic. Each route is bundled on its own, so the map is
// kept on globalThis for both to see the same one.
export const topics = (globalThis.__nextRouteTopics ??= new Map());
