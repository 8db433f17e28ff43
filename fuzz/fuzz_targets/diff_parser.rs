//! Any bytes as a unified-diff patch: the parser and the whole analysis must never panic or
//! hang, and analysing the same input twice gives the same signature.
#![no_main]

use clawtriage::triage::{self, FileChange, FileStatus, PrInput, TriageConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = triage::diff::parse_patch(&text, 64);
    let cfg = TriageConfig::default();
    let pr = PrInput {
        number: 1,
        title: String::new(),
        body: String::new(),
        author: "fuzz".into(),
        created_at: 0,
        head_sha: "0".repeat(40),
        files: vec![FileChange {
            path: "src/lib.ts".into(),
            previous_path: None,
            status: FileStatus::Modified,
            additions: 0,
            deletions: 0,
            patch: Some(text.into_owned()),
            sha: None,
        }],
    };
    let a = triage::analyse(&pr, &cfg);
    let b = triage::analyse(&pr, &cfg);
    assert_eq!(
        serde_json::to_string(&a.signature).unwrap(),
        serde_json::to_string(&b.signature).unwrap()
    );
});
