//! Product thumbnails: a small JPEG copy of each product's image, made at
//! ingest from the bytes the worker fetched anyway ([`make`]), stored in
//! the database ([`ThumbStore`]) so that every instance sharing it can
//! serve every thumbnail, and served with an `ETag` by the web pages'
//! thumbnail route. Shoppers' browsers never hot-link the marketplace's
//! images.

use std::io::Cursor;

use fast_image_resize::{
    PixelType, ResizeAlg, ResizeOptions, Resizer,
    images::{Image, ImageRef},
};
use image::{RgbImage, codecs::jpeg::JpegEncoder};
use sha2::{Digest, Sha256};

use crate::{
    db::Db,
    embed::preprocess::{self, DecodeLimits, PreprocessError},
};

/// The longest side of a thumbnail, in pixels: sharp in a 2× grid cell of
/// 160 CSS pixels, about 10–20 KB as JPEG.
pub const MAX_SIDE: u32 = 320;
const JPEG_QUALITY: u8 = 80;

/// A thumbnail as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Thumbnail {
    pub product_id: String,
    /// sha256 of the image it was made from.
    pub source_sha256: String,
    /// A strong validator: the quoted sha256 of `bytes`.
    pub etag: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Decodes `image` (with the embedder's checks: sniffed format, pixel cap)
/// and scales it to fit [`MAX_SIDE`], keeping its aspect; a smaller image
/// keeps its size. CPU work, and it may wait for room in the decode
/// budget: call it off the async runtime.
pub fn make(image: &[u8], limits: &DecodeLimits) -> Result<Vec<u8>, PreprocessError> {
    let decoded = preprocess::decode(image, limits)?;
    let rgb: &RgbImage = &decoded;
    let (w, h) = rgb.dimensions();
    let scale = (f64::from(MAX_SIDE) / f64::from(w.max(h))).min(1.0);
    let (tw, th) = (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    );
    let resized;
    let small = if (tw, th) == (w, h) {
        rgb
    } else {
        let src = ImageRef::new(w, h, rgb.as_raw(), PixelType::U8x3)
            .map_err(|e| PreprocessError::Resize(e.to_string()))?;
        let mut dst = Image::new(tw, th, PixelType::U8x3);
        Resizer::new()
            .resize(
                &src,
                &mut dst,
                &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(
                    fast_image_resize::FilterType::Bilinear,
                )),
            )
            .map_err(|e| PreprocessError::Resize(e.to_string()))?;
        resized = RgbImage::from_raw(tw, th, dst.into_vec()).expect("buffer of the right size");
        &resized
    };
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(small)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    Ok(out.into_inner())
}

/// The `product_thumbnails` table.
#[derive(Clone)]
pub struct ThumbStore {
    db: Db,
}

impl ThumbStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The thumbnail of `product_id`, if one was made.
    pub async fn get(&self, product_id: &str) -> Result<Option<Thumbnail>, sqlx::Error> {
        sqlx::query_as(
            "SELECT product_id, source_sha256, etag, content_type, bytes \
             FROM product_thumbnails WHERE product_id = $1",
        )
        .bind(product_id)
        .fetch_optional(self.db.reader())
        .await
    }

    /// The sha256 of the image the stored thumbnail was made from.
    pub async fn source_of(&self, product_id: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT source_sha256 FROM product_thumbnails WHERE product_id = $1")
            .bind(product_id)
            .fetch_optional(self.db.reader())
            .await
    }

    /// Stores (or replaces) the JPEG `bytes` made from an image whose
    /// sha256 is `source_sha256`.
    pub async fn put(
        &self,
        product_id: &str,
        source_sha256: &str,
        bytes: Vec<u8>,
    ) -> Result<(), sqlx::Error> {
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
        let now = chrono::Utc::now().timestamp_millis();
        // A write nobody waits on: see `Db::background_turn`.
        let _turn = self.db.background_turn().await;
        sqlx::query(
            "INSERT INTO product_thumbnails \
             (product_id, source_sha256, etag, content_type, bytes, updated_at) \
             VALUES ($1, $2, $3, 'image/jpeg', $4, $5) \
             ON CONFLICT (product_id) DO UPDATE SET source_sha256 = excluded.source_sha256, \
             etag = excluded.etag, content_type = excluded.content_type, \
             bytes = excluded.bytes, updated_at = excluded.updated_at",
        )
        .bind(product_id)
        .bind(source_sha256)
        .bind(etag)
        .bind(bytes)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Forgets the thumbnail of a deleted product.
    pub async fn delete(&self, product_id: &str) -> Result<(), sqlx::Error> {
        let _turn = self.db.background_turn().await;
        sqlx::query("DELETE FROM product_thumbnails WHERE product_id = $1")
            .bind(product_id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_becomes_a_small_jpeg_of_the_same_aspect() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/photos");
        let mut entry = std::fs::read_dir(&dir)
            .expect("tests/data/photos (scripts/fetch-assets.sh)")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect::<Vec<_>>();
        entry.sort();
        let photo = std::fs::read(&entry[0]).unwrap();
        let original = image::load_from_memory(&photo).unwrap();
        let thumb = make(&photo, &DecodeLimits::new(40_000_000, 512 << 20)).unwrap();
        let t = image::load_from_memory_with_format(&thumb, image::ImageFormat::Jpeg).unwrap();
        assert_eq!(
            t.width().max(t.height()),
            MAX_SIDE.min(original.width().max(original.height()))
        );
        let aspect = |w: u32, h: u32| f64::from(w) / f64::from(h);
        assert!(
            (aspect(t.width(), t.height()) - aspect(original.width(), original.height())).abs()
                < 0.02
        );
        assert!(
            thumb.len() < photo.len() && thumb.len() < 60_000,
            "{} bytes",
            thumb.len()
        );
    }

    #[test]
    fn what_is_not_an_image_is_refused() {
        assert_eq!(
            make(
                b"<html>not a picture</html>",
                &DecodeLimits::new(1000, 1 << 20)
            ),
            Err(PreprocessError::NotAnImage)
        );
    }
}
