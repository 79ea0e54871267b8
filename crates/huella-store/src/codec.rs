//! Record encoding: serde + bincode 2 (standard config: varint integers, little
//! endian), with a decode limit so a damaged length prefix cannot ask for gigabytes.

use crate::StoreError;
use serde::{de::DeserializeOwned, Serialize};

/// Largest record the decoder will materialise. A template is at most 1 MiB of opaque
/// payload (or 16 KiB of embedding); an encounter's text fields stay under 300 KiB.
pub(crate) const MAX_RECORD_BYTES: usize = 4 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| StoreError::Database(format!("cannot encode record: {e}")))
}

/// Decode one record that must fill `bytes` exactly; `what` names the table and key for
/// the error (ids only, never content).
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    match bincode::serde::decode_from_slice::<T, _>(bytes, config()) {
        Ok((value, used)) if used == bytes.len() => Ok(value),
        Ok((_, used)) => Err(StoreError::corrupt(format!(
            "{}: {} trailing bytes after the record",
            what(),
            bytes.len() - used
        ))),
        Err(e) => Err(StoreError::corrupt(format!("{}: {e}", what()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huella_core::{AlgorithmId, Embedding, Modality, Template};

    #[test]
    fn templates_round_trip_bit_exactly() {
        let alg = AlgorithmId::new("demo", "1").expect("valid");
        for seed in 1..200u32 {
            let v: Vec<f32> = (0..128)
                .map(|i| ((seed * 7919 + i * 104_729) % 1000) as f32 - 500.0)
                .collect();
            let Ok(e) = Embedding::new(v) else { continue };
            let t = Template::from_embedding(Modality::Face, alg.clone(), e);
            let bytes = encode(&t).expect("encodes");
            let back: Template = decode(&bytes, || "t".into()).expect("decodes");
            assert_eq!(back, t);
        }
    }

    #[test]
    fn damaged_bytes_are_corrupt_not_panics() {
        let bytes = encode(&vec![1u64, 2, 3]).expect("encodes");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<Vec<u64>>(&longer, || "x".into()),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<Vec<u64>>(&bytes[..2], || "x".into()),
            Err(StoreError::Corrupt { .. })
        ));
        // A length prefix claiming 2^60 elements must not allocate.
        let huge = [0xFDu8, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert!(matches!(
            decode::<Vec<u64>>(&huge, || "x".into()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
