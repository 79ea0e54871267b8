//! Resource limits applied before any allocation sized by an untrusted header.

/// Resource limits for decoding untrusted images.
///
/// Every limit is checked against what the file *declares* before pixel memory is
/// allocated, so a small file declaring a huge image is rejected at once.
///
/// ```
/// use huella_imaging::Limits;
///
/// let limits = Limits::default().with_max_pixels(12_000_000).with_max_bytes(8 << 20);
/// assert_eq!(limits.max_pixels(), 12_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_bytes: u64,
    max_pixels: u64,
    max_width: u32,
    max_height: u32,
}

impl Default for Limits {
    /// 64 MiB of input, 40 megapixels, at most 20000 x 20000.
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 20,
            max_pixels: 40_000_000,
            max_width: 20_000,
            max_height: 20_000,
        }
    }
}

impl Limits {
    /// Sets the largest accepted input (bytes in memory, or file size).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets the largest accepted `width * height`.
    #[must_use]
    pub fn with_max_pixels(mut self, max_pixels: u64) -> Self {
        self.max_pixels = max_pixels;
        self
    }

    /// Sets the largest accepted width in pixels.
    #[must_use]
    pub fn with_max_width(mut self, max_width: u32) -> Self {
        self.max_width = max_width;
        self
    }

    /// Sets the largest accepted height in pixels.
    #[must_use]
    pub fn with_max_height(mut self, max_height: u32) -> Self {
        self.max_height = max_height;
        self
    }

    /// The largest accepted input size in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The largest accepted `width * height`.
    pub fn max_pixels(&self) -> u64 {
        self.max_pixels
    }

    /// The largest accepted width.
    pub fn max_width(&self) -> u32 {
        self.max_width
    }

    /// The largest accepted height.
    pub fn max_height(&self) -> u32 {
        self.max_height
    }

    /// Memory the decoder may use: the largest decoded buffer (16-bit RGBA, 8 bytes per
    /// pixel) plus room for metadata and intermediate buffers proportional to the input.
    pub(crate) fn decoder_alloc(&self) -> u64 {
        self.max_pixels
            .saturating_mul(8)
            .saturating_add(self.max_bytes)
            .saturating_add(16 << 20)
    }

    /// Checks declared dimensions; the first limit exceeded is reported.
    pub(crate) fn check_dimensions(
        &self,
        width: u32,
        height: u32,
    ) -> Result<(), crate::ImagingError> {
        let too_large = |what, limit, actual| crate::ImagingError::TooLarge {
            what,
            limit,
            actual,
        };
        if width > self.max_width {
            return Err(too_large(
                "width",
                u64::from(self.max_width),
                u64::from(width),
            ));
        }
        if height > self.max_height {
            return Err(too_large(
                "height",
                u64::from(self.max_height),
                u64::from(height),
            ));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(too_large("pixels", self.max_pixels, pixels));
        }
        Ok(())
    }
}
