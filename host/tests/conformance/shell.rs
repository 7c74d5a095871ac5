//! The shell-word processor against `buildkit-shell/envVarTest`,
//! `buildkit-shell/wordsTest` and `authored/shell-modifiers.tsv`
//! (README.md §2 and §4 of the conformance folder).
//!
//! Every row of a file is run; failures are collected and reported together,
//! and the number of executed rows is checked so a truncated file fails.

use std::fmt::Debug;
use std::fs;

use kiln::dockerfile::shell::{Lexer, ShellError};

use crate::common::conformance_dir;

/// One row that did not give the expected result.
struct Failure {
    line: usize,
    input: String,
    expected: String,
    got: String,
}

fn read(relative: &str) -> String {
    let path = conformance_dir().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Compare one result with the expectation; `None` expected means "must fail".
fn check<T: PartialEq + Debug>(
    failures: &mut Vec<Failure>,
    line: usize,
    input: &str,
    expected: Option<T>,
    got: Result<T, ShellError>,
) {
    let ok = match (&expected, &got) {
        (None, Err(_)) => true,
        (Some(want), Ok(have)) => want == have,
        _ => false,
    };
    if !ok {
        failures.push(Failure {
            line,
            input: input.to_string(),
            expected: expected.map_or_else(|| "an error".to_string(), |e| format!("{e:?}")),
            got: match got {
                Ok(value) => format!("{value:?}"),
                Err(e) => format!("error: {e} (offset {})", e.offset),
            },
        });
    }
}

fn assert_all_pass(file: &str, failures: &[Failure], executed: usize, expected_rows: usize) {
    let report: Vec<String> = failures
        .iter()
        .map(|f| {
            format!(
                "  {file}:{}: input {:?}: expected {}, got {}",
                f.line, f.input, f.expected, f.got
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {executed} rows of {file} failed:\n{}",
        failures.len(),
        report.join("\n")
    );
    assert_eq!(
        executed, expected_rows,
        "{file}: executed {executed} rows, expected {expected_rows} (truncated or changed file?)"
    );
}

#[test]
fn env_var_test() {
    let text = read("buildkit-shell/envVarTest");
    let env = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ];
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut executed = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.starts_with('#') {
            continue;
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let fields: Vec<&str> = trimmed.split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 3, "envVarTest:{line}: expected 3 fields");
        match fields[0] {
            "A" | "U" => {}
            "W" => continue,
            other => panic!("envVarTest:{line}: unknown platform {other:?}"),
        }
        let (input, expected) = (fields[1], fields[2]);
        let expected = (expected != "error").then(|| expected.to_string());
        check(
            &mut failures,
            line,
            input,
            expected,
            lexer.process_word(input, &env),
        );
        executed += 1;
    }
    assert_all_pass("envVarTest", &failures, executed, 228);
}

#[test]
fn words_test() {
    let text = read("buildkit-shell/wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut executed = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.starts_with('#') || raw.is_empty() {
            continue;
        }
        if let Some(rest) = raw.strip_prefix("ENV ") {
            let (name, value) = rest
                .trim_start_matches(' ')
                .split_once('=')
                .unwrap_or_else(|| panic!("wordsTest:{line}: ENV line without '='"));
            env.push((name.to_string(), value.to_string()));
            continue;
        }
        let (input, expected) = raw
            .split_once('|')
            .unwrap_or_else(|| panic!("wordsTest:{line}: expected one '|'"));
        assert!(
            !expected.contains('|'),
            "wordsTest:{line}: expected exactly one '|'"
        );
        let input = input.trim();
        // Trailing spaces of the expectation are significant.
        let expected: Vec<String> = expected
            .trim_start_matches(' ')
            .split(',')
            .map(str::to_string)
            .collect();
        let expected = (expected != ["error"]).then_some(expected);
        check(
            &mut failures,
            line,
            input,
            expected,
            lexer.process_words(input, &env),
        );
        executed += 1;
    }
    assert_all_pass("wordsTest", &failures, executed, 24);
}

#[test]
fn shell_modifiers() {
    let text = read("authored/shell-modifiers.tsv");
    // The environment stated in the file's header comment.
    assert!(
        text.contains("V=foobarbaz  P=/usr/local/bin/app.tar.gz  E=(set, empty)  Q=foo"),
        "shell-modifiers.tsv: the environment in the header comment changed"
    );
    let env = [
        ("V", "foobarbaz"),
        ("P", "/usr/local/bin/app.tar.gz"),
        ("E", ""),
        ("Q", "foo"),
        ("S", "a  b"),
    ];
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut executed = 0;
    let mut header_seen = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = raw.split('\t').collect();
        if !header_seen {
            assert_eq!(
                fields,
                ["input", "expected", "bash", "note"],
                "shell-modifiers.tsv:{line}: unexpected header"
            );
            header_seen = true;
            continue;
        }
        assert!(
            fields.len() >= 2,
            "shell-modifiers.tsv:{line}: expected tab-separated columns"
        );
        let (input, expected) = (fields[0], fields[1]);
        let expected = (expected != "error").then(|| expected.to_string());
        check(
            &mut failures,
            line,
            input,
            expected,
            lexer.process_word(input, &env),
        );
        executed += 1;
    }
    assert_all_pass("shell-modifiers.tsv", &failures, executed, 60);
}
