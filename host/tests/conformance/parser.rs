//! BuildKit's parser vectors (`buildkit-parser/`) and our heredoc cases
//! (`authored/heredoc-cases.json`).

use crate::common::{conformance_dir, sorted_subdirs};
use kiln::dockerfile::parse;
use std::fs;

#[test]
fn buildkit_positive_cases_dump_identically() {
    let root = conformance_dir().join("buildkit-parser/testfiles");
    let cases = sorted_subdirs(&root);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let input = fs::read(case.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(case.join("result")).unwrap();
        match parse(&input, "Dockerfile") {
            Ok(df) => {
                let got = df.dump();
                if got != expected {
                    failures.push(format!("{name}:\n--- expected\n{expected}--- got\n{got}"));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert_eq!(cases.len(), 33, "expected 33 positive parser cases");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn buildkit_negative_cases_are_rejected() {
    let root = conformance_dir().join("buildkit-parser/testfiles-negative");
    let cases = sorted_subdirs(&root);
    let accepted: Vec<_> = cases
        .iter()
        .filter(|case| parse(&fs::read(case.join("Dockerfile")).unwrap(), "Dockerfile").is_ok())
        .map(|c| c.display().to_string())
        .collect();
    assert_eq!(cases.len(), 4, "expected 4 negative parser cases");
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

#[test]
fn buildkit_line_numbers() {
    let path = conformance_dir().join("buildkit-parser/testfile-line/Dockerfile");
    let df = parse(&fs::read(path).unwrap(), "Dockerfile").unwrap();
    assert_eq!(df.line_range(), (5, 31));
    let ranges: Vec<_> = df
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(ranges, vec![(5, 5), (11, 12), (17, 31)]);
}

#[test]
fn authored_heredoc_cases() {
    let path = conformance_dir().join("authored/heredoc-cases.json");
    let data: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let cases = data["cases"].as_array().expect("cases array");
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let text = case["dockerfile"].as_str().unwrap();
        let result = parse(text.as_bytes(), "Dockerfile");
        if case["error"].as_bool().unwrap() {
            if result.is_ok() {
                failures.push(format!("{id}: parsed, expected an error"));
            }
            continue;
        }
        let df = match result {
            Ok(df) => df,
            Err(e) => {
                failures.push(format!("{id}: {e}"));
                continue;
            }
        };
        let want = case["instructions"].as_array().unwrap();
        if want.len() != df.nodes.len() {
            failures.push(format!(
                "{id}: {} instructions, expected {}",
                df.nodes.len(),
                want.len()
            ));
            continue;
        }
        for (node, w) in df.nodes.iter().zip(want) {
            let got = serde_json::json!({
                "start_line": node.start_line,
                "end_line": node.end_line,
                "dump": node.dump(),
                "heredocs": node.heredocs.iter().map(|h| serde_json::json!({
                    "name": h.name, "fd": h.fd, "expand": h.expand,
                    "chomp": h.chomp, "content": h.content,
                })).collect::<Vec<_>>(),
            });
            let expected = serde_json::json!({
                "start_line": w["start_line"],
                "end_line": w["end_line"],
                "dump": w["dump"],
                "heredocs": w["heredocs"],
            });
            if got != expected {
                failures.push(format!(
                    "{id}[{}]: got {got}, expected {expected}",
                    w["index"]
                ));
            }
        }
    }
    assert_eq!(cases.len(), 21, "expected 21 heredoc cases");
    assert!(
        failures.is_empty(),
        "{} heredoc failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
