//! BuildKit's shell-word processor: quote removal, escapes and `$VAR` /
//! `${VAR…}` expansion.
