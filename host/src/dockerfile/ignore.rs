//! The `.dockerignore` matcher (BuildKit's "modern" pattern matcher).
