//! Every image format `huella_imaging::decode` sniffs (WSQ included) on arbitrary bytes:
//! an error is fine, a panic, hang or huge allocation is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = huella_imaging::Limits::default().with_max_pixels(4_000_000);
    let _ = huella_imaging::decode(data, &limits);
});
