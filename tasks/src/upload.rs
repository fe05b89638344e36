//! upload: `device-upload` orchestration. (Skeleton; filled in by its issue.)
