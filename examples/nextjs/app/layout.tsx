import type { ReactNode } from 'react';
import Link from 'next/link';
import './globals.css';

export const metadata = { title: 'tidings + Next.js' };

const pages = [
  ['/feed', 'Activity feed'],
  ['/notifications', 'Notifications'],
  ['/jobs', 'Job progress'],
  ['/metrics', 'Live metrics'],
  ['/agent', 'AI agent'],
  ['/chat', 'Chat'],
  ['/compare', 'Two recipes'],
];

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <nav>
          <Link href="/">tidings + Next.js</Link>
          {pages.map(([href, label]) => (
            <Link key={href} href={href}>
              {label}
            </Link>
          ))}
        </nav>
        <main>{children}</main>
      </body>
    </html>
  );
}
