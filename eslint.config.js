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
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Plain JavaScript outside the TypeScript project (the programs sent to the VM in
    // src/deploy/remote, entry scripts, fixtures): checked without types.
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Debt the type-aware rules found in code other branches are changing now (the service, its
    // tests, monitoring, image and chart tests): fixed with those branches, not here, to keep the
    // merges clean. Remove an entry once its files pass.
    files: [
      'src/service/observe.ts',
      'test/service/**',
      'test/monitoring/**',
      'test/image/**',
      'test/k8s/**',
    ],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
);
