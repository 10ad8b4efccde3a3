import { hubUrl } from 'tidings-client/server';
import { AgentView } from './agent-view';

export const dynamic = 'force-dynamic';

export default function AgentPage() {
  return (
    <>
      <h1>AI agent progress</h1>
      <p>A simulated agent streams its steps, then its answer token by token.</p>
      <AgentView hubUrl={hubUrl()} />
    </>
  );
}
