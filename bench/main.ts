// `npm run bench -- <name> [--json] [--quick]`: runs bench/<name>.ts. Each bench compares against a
// reference measured in the same command and prints ratios; none asserts an absolute time.
const BENCHES: Record<string, () => Promise<{ run(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> }>> = {
  engine: () => import('./engine.js'),
  data: () => import('./data.js'),
  generate: () => import('./generate.js'),
  moe: () => import('./moe.js'),
  train: () => import('./train.js'),
  distributed: () => import('./distributed.js'),
  search: () => import('./search.js'),
  serve: () => import('./serve.js'),
};

async function main(argv: string[]): Promise<number> {
  const names = argv.filter((a) => !a.startsWith('--'));
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
  if (!names.length || names.some((n) => !(n in BENCHES))) {
    console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [--json] [--quick]`);
    return 2;
  }
  for (const n of names) await (await BENCHES[n]()).run({ json, quick });
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
