//! Benchmark: parse and plan a large Dockerfile.

fn main() {}
