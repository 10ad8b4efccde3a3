import { hubUrl } from 'tidings-client/server';
import { postEntry } from './actions';
import { FeedList } from './feed-list';

// The hub URL comes from TIDINGS_HUB_URL at request time, not at build time.
export const dynamic = 'force-dynamic';

export default function FeedPage() {
  return (
    <>
      <h1>Activity feed</h1>
      <p>Post an entry: the server action publishes it, and every tab with this page open shows it at once.</p>
      <form action={postEntry}>
        <input name="text" placeholder="What happened?" required maxLength={280} />
        <button type="submit">Post</button>
      </form>
      <FeedList hubUrl={hubUrl()} />
    </>
  );
}
