import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "dist/**",
      ".devdist/**",
      ".whl/**",
      "node_modules/**",
      "python-probe/**",
      "test-results/**",
      ".cache/**",
      "test/fixtures/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["*.mjs", "scripts/*.mjs"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test registers tests synchronously; the promise it returns is the runner's to await.
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Every child process of the product goes through src/runner/exec.ts, where the extension's
    // workspace-trust gate is: a process started elsewhere would slip past Restricted Mode.
    files: ["src/**/*.ts"],
    ignores: ["src/runner/exec.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: ["child_process", "node:child_process", "execa"].map((name) => ({
            name,
            message:
              "Start processes through src/runner/exec.ts (runToEnd, loadExeca): it holds the trust gate.",
          })),
        },
      ],
    },
  },
  { files: ["**/*.mjs"], ...tseslint.configs.disableTypeChecked },
);
