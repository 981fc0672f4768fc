import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**', '.tap/**', 'bench/results/**']
  }),
  {
    rules: {
      // `export const X = {…} as const` with `export type X` beside it is how this codebase does enums.
      '@typescript-eslint/no-redeclare': 'off',
      // `void promise` marks a promise deliberately not awaited.
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
