import { hubUrl } from 'tidings-client/server';
import { currentUser } from '@/lib/session';
import { notificationsOf } from '@/lib/topics';
import { notify, signIn, signOut } from './actions';
import { NotificationList } from './notification-list';

export const dynamic = 'force-dynamic';

export default async function NotificationsPage() {
  const user = await currentUser();
  if (!user) {
    return (
      <>
        <h1>Notifications</h1>
        <p>Sign in with any name. Notifications are private: the hub sends each one only to its user.</p>
        <form action={signIn}>
          <input name="user" placeholder="your name (a-z, 0-9)" pattern="[a-zA-Z0-9\-]{1,32}" required />
          <button type="submit">Sign in</button>
        </form>
      </>
    );
  }
  return (
    <>
      <h1>Notifications for <span data-testid="user">{user}</span></h1>
      <form action={signOut}>
        <button type="submit">Sign out</button>
      </form>
      <form action={notify}>
        <input name="to" placeholder="to (a user's name)" required />
        <input name="text" placeholder="message" required maxLength={280} />
        <button type="submit">Notify</button>
      </form>
      <NotificationList hubUrl={hubUrl()} topic={notificationsOf(user)} />
    </>
  );
}
