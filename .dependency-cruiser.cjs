/**
 * stella's layering (docs/architecture.md): arrows point down only —
 * app → edges (api, cli, activities, workflows, workers) → core → libraries → lib.
 * `npm run lint` runs this; a violation names the rule and both files.
 */
const LIBS = '^src/(merkle|crypto|archive|scanner|blob|registry)/';
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'import cycles make layers meaningless',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    { name: 'lib-imports-nothing-above', severity: 'error', from: { path: '^src/lib/' }, to: { path: '^(src/(?!lib/)|activities|workflows|workers)' } },
    {
      name: 'libraries-import-only-lib',
      severity: 'error',
      comment: 'merkle/crypto/archive/scanner/blob/registry use src/lib only (and each other where a library composes another)',
      from: { path: LIBS },
      to: { path: '^(src/(core|api|cli|app|db|dev|temporal)/|src/[^/]+\\.ts$|activities|workflows|workers)' },
    },
    {
      name: 'core-not-edges',
      severity: 'error',
      comment: 'core never imports the HTTP API, the CLI, activities, workflows, workers or the composition root',
      from: { path: '^src/core/' },
      to: { path: '^(src/(api|cli|app)/|activities|workflows|workers)' },
    },
    {
      name: 'activities-not-workflows',
      severity: 'error',
      comment: 'activities do I/O; they never import workflow code',
      from: { path: '^activities/' },
      to: { path: '^workflows/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'workflows-deterministic',
      severity: 'error',
      comment: 'workflow code imports only workflow-safe modules: other workflows, pure types and names',
      from: { path: '^workflows/' },
      to: { path: '^(src/(core|api|cli|app|db|blob|dev)/|activities/|workers/)', dependencyTypesNot: ['type-only'] },
    },
    { name: 'api-not-cli', severity: 'error', from: { path: '^src/api/' }, to: { path: '^(src/cli/|workers/)' } },
    {
      name: 'cli-talks-to-api',
      severity: 'error',
      comment: 'the CLI is a client: no SQL, no core, no worker',
      from: { path: '^src/cli/' },
      to: { path: '^(src/(db|api)/|activities|workflows|workers)', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|test|bench)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
