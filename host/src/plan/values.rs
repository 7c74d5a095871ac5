//! Typed values of instruction flags: `RUN --mount`, `--chmod`, platforms,
//! durations.
