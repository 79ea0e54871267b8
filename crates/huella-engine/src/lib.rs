//! Engine facade (in progress).
