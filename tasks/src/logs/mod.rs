//! logs: see lib.rs. (Skeleton; filled in by its issue.)
