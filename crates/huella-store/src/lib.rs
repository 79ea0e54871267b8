//! Gallery store (in progress).
