//! Any bytes as `git diff` output, fed in chunks of any size through the capped reader that the
//! mirror streams git's output into: it never panics, the chunking never changes the result, it
//! reads the same files as the whole-text parser, and it never takes more than its cap.
#![no_main]

use clawtriage::git::{DiffStream, parse_git_diff};
use libfuzzer_sys::fuzz_target;

fn patch_bytes(files: &[clawtriage::github::FileEntry]) -> usize {
    files
        .iter()
        .map(|f| f.patch.as_ref().map_or(0, String::len))
        .sum()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let cap = u16::from_le_bytes([data[0], data[1]]) as usize;
    let step = data[2] as usize % 97 + 1;
    let body = &data[3..];

    let mut whole = DiffStream::new(usize::MAX);
    assert!(whole.push(body));
    let whole = whole.finish();
    let mut chunked = DiffStream::new(usize::MAX);
    for c in body.chunks(step) {
        assert!(chunked.push(c));
    }
    let chunked = chunked.finish();
    assert_eq!(format!("{:?}", whole.files), format!("{:?}", chunked.files));
    assert_eq!(
        format!("{:?}", whole.files),
        format!("{:?}", parse_git_diff(&String::from_utf8_lossy(body)))
    );

    let mut capped = DiffStream::new(cap);
    for c in body.chunks(step) {
        if !capped.push(c) {
            break;
        }
    }
    let capped = capped.finish();
    assert!(capped.bytes <= cap);
    assert_eq!(capped.capped, body.len() > cap);
    // Each byte taken becomes at most one replacement character (3 bytes) of patch text.
    assert!(patch_bytes(&capped.files) <= 3 * capped.bytes);
});
