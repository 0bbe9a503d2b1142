//! Thumbnails of image attachments: at most [`MAX_SIDE`] pixels a side, made after the
//! upload has answered (and again on first request if a crash lost that), never on the
//! request path of a send. Decoding is bounded twice: uploads over 40 megapixels were refused
//! from their header (`images.rs`), and the decoder itself stops past [`MAX_DECODE_BYTES`].

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// The longest side of a thumbnail.
pub const MAX_SIDE: u32 = 320;
/// The most memory one decode may take (a 40-megapixel RGBA picture is 160 MB).
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// The widest or tallest picture decoded.
const MAX_DIMENSION: u32 = 40_000;

/// A thumbnail: its bytes and their type.
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// The thumbnail of an image's bytes: a JPEG, or a PNG if the image has transparency. A
/// picture already small enough keeps its size. CPU-bound: run it off the async threads.
pub fn make(image: &[u8]) -> anyhow::Result<Thumbnail> {
    let mut reader = ImageReader::new(Cursor::new(image)).with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoded = reader.decode()?;
    let small = if decoded.width() <= MAX_SIDE && decoded.height() <= MAX_SIDE {
        decoded
    } else {
        decoded.thumbnail(MAX_SIDE, MAX_SIDE)
    };
    let mut bytes = Cursor::new(Vec::new());
    let content_type = if small.color().has_alpha() {
        small.write_to(&mut bytes, ImageFormat::Png)?;
        "image/png"
    } else {
        let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80).encode_image(&rgb)?;
        "image/jpeg"
    };
    Ok(Thumbnail {
        bytes: bytes.into_inner(),
        content_type,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    fn size_of(thumbnail: &Thumbnail) -> (u32, u32) {
        let decoded = image::load_from_memory(&thumbnail.bytes).unwrap();
        (decoded.width(), decoded.height())
    }

    #[test]
    fn a_large_photo_shrinks_to_fit_keeping_its_shape() {
        let photo = RgbImage::from_pixel(1200, 900, Rgb([200, 30, 30]));
        let thumbnail = make(&encoded(photo.into(), ImageFormat::Png)).unwrap();
        assert_eq!(thumbnail.content_type, "image/jpeg");
        assert_eq!(size_of(&thumbnail), (320, 240));
    }

    #[test]
    fn transparency_is_kept_in_a_png_and_a_small_picture_keeps_its_size() {
        let icon = RgbaImage::from_pixel(64, 40, Rgba([0, 0, 255, 128]));
        let thumbnail = make(&encoded(icon.into(), ImageFormat::WebP)).unwrap();
        assert_eq!(thumbnail.content_type, "image/png");
        assert_eq!(size_of(&thumbnail), (64, 40));
    }

    #[test]
    fn a_tall_gif_fits_by_its_height() {
        let tall = RgbImage::from_pixel(100, 1000, Rgb([1, 2, 3]));
        let thumbnail = make(&encoded(tall.into(), ImageFormat::Gif)).unwrap();
        assert_eq!(size_of(&thumbnail), (32, 320));
    }

    #[test]
    fn what_claims_more_memory_than_allowed_is_not_decoded() {
        // A PNG header announcing 20,000 × 20,000 pixels (1.6 GB as RGBA), and no more.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&20_000u32.to_be_bytes());
        png.extend_from_slice(&20_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0]);
        png.extend_from_slice(&[0; 4]); // the CRC: never reached
        assert!(make(&png).is_err());
    }
}
