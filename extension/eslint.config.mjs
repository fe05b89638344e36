// Lint: typescript-eslint's recommended rules, plus the ones that keep a thin client honest.
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["dist/**", "out/**", "node_modules/**", ".vscode-test-work/**", "scripts/**", "test/fixtures/**"] },
    ...tseslint.configs.recommended,
    {
        files: ["src/**/*.ts", "test/**/*.ts"],
        rules: {
            "@typescript-eslint/no-floating-promises": "error",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
            "no-console": ["error", { allow: ["warn", "error"] }],
            eqeqeq: ["error", "smart"],
        },
        languageOptions: { parserOptions: { project: "./tsconfig.json", tsconfigRootDir: import.meta.dirname } },
    },
    {
        // Settings are read in src/config.ts only (rust-analyzer's config.ts): one place knows
        // the setting ids and their defaults.
        files: ["src/**/*.ts"],
        ignores: ["src/config.ts"],
        rules: {
            "no-restricted-syntax": [
                "error",
                {
                    selector: "MemberExpression[property.name='getConfiguration']",
                    message: "Read settings through src/config.ts (config(), updateSetting()).",
                },
            ],
        },
    },
);
