// Next.js requires a root layout; this app has only route handlers.
export default function RootLayout({ children }) {
  return children;
}
