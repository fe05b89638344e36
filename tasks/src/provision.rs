//! provision: the end-to-end provisioning job. (Skeleton; filled in by its issue.)
