//! ISO/IEC 19794-2 and ANSI INCITS 378 minutiae records on arbitrary bytes: an error is
//! fine; a panic, hang or huge allocation is a bug, and whatever decodes must re-encode
//! to the same bytes and decode to the same record.
#![no_main]
use huella_finger::MinutiaeRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = MinutiaeRecord::decode(data) {
        let bytes = record.encode().expect("a decoded record encodes");
        assert_eq!(bytes, data, "re-encoding is byte-exact");
        let again = MinutiaeRecord::decode(&bytes).expect("an encoded record decodes");
        assert_eq!(again, record);
    }
});
