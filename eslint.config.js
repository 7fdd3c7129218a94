// The linter's rules: typescript-eslint's recommended set, and the few exceptions this codebase needs.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config({ ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'deploy/**/*.js'] }, js.configs.recommended, ...tseslint.configs.recommended, {
  rules: {
    // HTTP syntax checks match control characters on purpose (CR, LF, NUL, DEL in fields).
    'no-control-regex': 'off',
    // Grouped case labels with a comment between them are not a fall-through.
    'no-fallthrough': ['error', { allowEmptyCase: true }],
    // `_name`: a parameter an interface requires, or a value left out of a destructuring.
    '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
  },
});
