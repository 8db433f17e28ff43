//! Any bytes as a webhook body: parsing GitHub's shapes must never panic.
#![no_main]

use clawtriage::github::PullSummary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = serde_json::from_value::<PullSummary>(v.get("pull_request").cloned().unwrap_or(v));
    }
});
