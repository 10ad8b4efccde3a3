import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

// The repository's measured figures, served from the checkout this example
// runs in, so the comparison page can link to them.
export async function GET() {
  try {
    const text = await readFile(join(process.cwd(), '../../docs/benchmarks.md'), 'utf8');
    return new Response(text, { headers: { 'content-type': 'text/markdown; charset=utf-8' } });
  } catch {
    return new Response('docs/benchmarks.md is in the tidings repository', { status: 404 });
  }
}
