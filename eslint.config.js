import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Type-aware: the rules that need types (floating promises, unsafe any, misused awaits) catch
// the deploy's mistakes that plain syntax rules cannot see. projectService reads tsconfig.json.
export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.test-env/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', fetch: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', Buffer: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Programs that run on the VM or in the app's container, sent there on stdin: plain
    // JavaScript outside the TypeScript project, so checked without types.
    files: ['src/deploy/remote/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
