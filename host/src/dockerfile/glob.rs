//! Go's `filepath.Match` pattern syntax, used by `.dockerignore` and by
//! COPY/ADD source wildcards.
