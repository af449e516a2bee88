// ESLint flat config: eslint's and typescript-eslint's recommended rules, the
// rules of hooks, and the JupyterLab extension template's few style rules.
// Formatting is prettier's job (`prettier --check` in `jlpm lint`), so
// eslint-config-prettier switches off every rule that would fight it.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import { defineConfig } from 'eslint/config';

export default defineConfig(
  { ignores: ['lib/', 'node_modules/', 'coverage/', '.yarn/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      // Not enabled: react-hooks/exhaustive-deps. The effects here run on
      // purpose only when an identity changes (a run's id, a list's
      // version, a filter's value), and the callbacks they call come fresh
      // from props on every render: listing those as dependencies would rerun
      // the effects on every render (FilterBox would call onChange again each
      // time its parent re-renders, refetching the list every 300 ms).
      '@typescript-eslint/naming-convention': [
        'error',
        { selector: 'interface', format: ['PascalCase'], custom: { regex: '^I[A-Z]', match: true } }
      ],
      '@typescript-eslint/no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_' }],
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error'
    }
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: globals.node }
  },
  {
    files: ['test/**/*.{ts,tsx}'],
    languageOptions: { globals: globals.jest }
  },
  prettier
);
