//! Any text as a `Link` header, and any next link: the parser never panics, and the client
//! accepts a URL only when it lies under its API base, so a token is never sent elsewhere.
#![no_main]

use clawtriage::github::{GithubClient, RetryPolicy, next_link};
use libfuzzer_sys::fuzz_target;

const BASE: &str = "https://api.github.com";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let client = GithubClient::new(BASE, None, None, RetryPolicy::default()).unwrap();
    let candidates = [next_link(&text), Some(text.to_string())];
    for url in candidates.into_iter().flatten() {
        if let Ok(abs) = client.absolute(&url) {
            // Whatever follows, the authority of such a URL is the API host.
            assert!(abs.starts_with(&format!("{BASE}/")), "{abs}");
        }
    }
});
