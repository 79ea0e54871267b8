//! ANSI/NIST-ITL transactions on arbitrary bytes: an error is fine; a panic, hang or
//! huge allocation is a bug. Whatever decodes must read through every typed view
//! without panicking, encode, and decode again to the same transaction.
#![no_main]
use huella_nist::Transaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Transaction::decode(data) {
        let _ = t.control_number();
        let _ = t.biographic();
        let _ = t.faces();
        let _ = t.finger_images();
        let _ = t.finger_minutiae();
        let bytes = t.encode().expect("a decoded transaction encodes");
        let again = Transaction::decode(&bytes).expect("an encoded transaction decodes");
        assert_eq!(again, t);
    }
});
