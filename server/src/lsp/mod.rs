//! The `devkit lsp` daemon: every task as a custom JSON-RPC request over stdio
//! (tower-lsp-server). (Skeleton; filled in by its issue.)
