//! `.dockerignore` cases from `dockerignore-cases.tsv` (README §3).

use kiln::dockerfile::ignore::IgnoreMatcher;

use crate::common::conformance_dir;

/// The number of data rows the file is known to hold.
const EXPECTED_ROWS: usize = 60;

#[test]
fn dockerignore_cases() {
    let path = conformance_dir().join("dockerignore-cases.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));

    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#'));
    let (_, header) = lines.next().expect("the file has no header line");
    assert_eq!(
        header.split('\t').collect::<Vec<_>>(),
        ["id", "patterns", "path", "expected", "legacy", "note"],
        "unexpected header"
    );

    let mut rows = 0;
    let mut failures = Vec::new();
    for (index, line) in lines {
        let lineno = index + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields.len(),
            6,
            "line {lineno}: expected 6 tab-separated fields"
        );
        let (id, patterns, path, expected) = (fields[0], fields[1], fields[2], fields[3]);
        let patterns: Vec<String> = serde_json::from_str(patterns)
            .unwrap_or_else(|e| panic!("line {lineno} ({id}): bad JSON pattern list: {e}"));
        rows += 1;

        let got = match IgnoreMatcher::from_lines(&patterns) {
            Err(_) => "error",
            Ok(m) if m.is_excluded(path) => "excluded",
            Ok(_) => "included",
        };
        assert!(
            matches!(expected, "excluded" | "included" | "error"),
            "line {lineno} ({id}): unknown expectation {expected:?}"
        );
        if got != expected {
            failures.push(format!(
                "{id} (line {lineno}): {patterns:?} on {path:?}: got {got}, want {expected}"
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {rows} .dockerignore cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(rows, EXPECTED_ROWS, "row count of {}", path.display());
}
