//! Bytes → model tensor: decode (checked), SIMD resize + crop, normalise.
//!
//! The content type a server claims is never trusted: the bytes are sniffed
//! and decoded, and the header's pixel count is checked *before* decoding so
//! a decompression bomb (a tiny file claiming 100 000 × 100 000 pixels) is
//! refused without allocating for it.
//!
//! Resize and centre-crop happen in one `fast_image_resize` pass: the crop
//! box is mapped back into source coordinates, so the image is never resized
//! to an intermediate 256-pixel size first.

use std::{cell::RefCell, io::Cursor, sync::Arc};

use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images::Image};
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use super::manifest::{Layout, Manifest};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PreprocessError {
    #[error("not an image: the bytes match no supported format (JPEG, PNG, WebP, GIF)")]
    NotAnImage,
    #[error("image is {width}x{height} = {pixels} pixels, over the cap of {cap} pixels")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        cap: u64,
    },
    #[error(
        "decoding this image needs {needed_mb} MB, more than the decode budget of {budget_mb} MB"
    )]
    OverBudget { needed_mb: u64, budget_mb: u64 },
    #[error("image has no pixels ({width}x{height})")]
    Empty { width: u32, height: u32 },
    #[error("corrupt or truncated image: {0}")]
    Decode(String),
    #[error("resize failed: {0}")]
    Resize(String),
}

/// How much memory decoding may take: a pixel cap for one image, and a byte
/// budget shared by every decode in the process.
///
/// The pixel cap alone does not bound memory: what a decoder allocates
/// depends on the bit depth, the channels and (for GIF and animated WebP) the
/// canvas, and on how many images are decoded at once. In the audit a
/// 6300² RGBA16 PNG, under the pixel cap, peaked at 624 MB, and ten at once
/// at 1.2 GB. So each decode first reserves its computed cost
/// ([`decode_cost`]) from the budget and holds it until its pixels are
/// dropped: decodes beyond the budget wait their turn (back-pressure), and an
/// image whose cost alone exceeds the budget is refused before any pixel is
/// allocated.
#[derive(Clone)]
pub struct DecodeLimits {
    pub max_pixels: u64,
    budget: Arc<Budget>,
}

/// A FIFO counting semaphore over bytes. tokio's semaphore is fair, so a
/// large image waiting for room is not starved by a stream of small ones;
/// decodes run on rayon threads, where waiting means blocking the thread.
struct Budget {
    sem: tokio::sync::Semaphore,
    bytes: u64,
}

/// The budget counts in units of this many bytes, so that any byte count a
/// machine can hold fits `acquire_many`'s `u32`.
const UNIT: u64 = 64 << 10;

impl DecodeLimits {
    pub fn new(max_pixels: u64, budget_bytes: u64) -> Self {
        let units = budget_bytes.div_ceil(UNIT).clamp(1, u64::from(u32::MAX));
        Self {
            max_pixels,
            budget: Arc::new(Budget {
                sem: tokio::sync::Semaphore::new(units as usize),
                bytes: units * UNIT,
            }),
        }
    }

    /// The whole budget, in bytes.
    pub fn budget_bytes(&self) -> u64 {
        self.budget.bytes
    }

    /// Bytes reserved by decodes in flight right now.
    pub fn in_flight_bytes(&self) -> u64 {
        let free = self.budget.sem.available_permits() as u64;
        self.budget.bytes - free * UNIT
    }

    /// Waits until `bytes` are free in the budget and reserves them.
    fn reserve(&self, bytes: u64) -> Result<Reservation, PreprocessError> {
        if bytes > self.budget.bytes {
            return Err(PreprocessError::OverBudget {
                needed_mb: bytes.div_ceil(1 << 20),
                budget_mb: self.budget.bytes >> 20,
            });
        }
        let units = bytes.div_ceil(UNIT).max(1) as u32;
        let budget = self.budget.clone();
        // Never closed, so acquiring cannot fail. `block_on` is the
        // futures executor's: it parks this (rayon or blocking) thread and
        // needs no tokio runtime.
        let permit = futures::executor::block_on(budget.sem.acquire_many(units))
            .expect("the decode budget is never closed");
        permit.forget();
        Ok(Reservation {
            budget: self.budget.clone(),
            units,
        })
    }
}

/// Reserved decode memory, given back when dropped.
pub struct Reservation {
    budget: Arc<Budget>,
    units: u32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.sem.add_permits(self.units as usize);
    }
}

/// A decoded image, holding its share of the decode budget until dropped.
pub struct Decoded {
    pub image: RgbImage,
    _reservation: Reservation,
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("dimensions", &self.image.dimensions())
            .finish()
    }
}

impl std::ops::Deref for Decoded {
    type Target = RgbImage;
    fn deref(&self) -> &RgbImage {
        &self.image
    }
}

/// The most memory decoding a `width × height` image of `color` to 8-bit
/// RGB holds at once, from what the decoders and the conversion allocate:
/// the decoder's output buffer (bit depth × channels × canvas: a GIF or an
/// animated WebP is decoded onto its whole logical screen, whatever its
/// frames' sizes), then the 8-bit copies the conversion makes while the
/// previous buffer is still alive. A progressive JPEG also keeps every DCT
/// coefficient (2 bytes per sample) until its last scan. Checked against
/// allocations counted in `tests/decode_memory.rs`.
pub fn decode_cost(
    format: image::ImageFormat,
    color: image::ColorType,
    width: u32,
    height: u32,
    progressive_jpeg: bool,
) -> u64 {
    let px = u64::from(width) * u64::from(height);
    let decoded = px * u64::from(color.bytes_per_pixel());
    let converted = if color == image::ColorType::Rgb8 {
        decoded
    } else if color.has_alpha() {
        // → RGBA8 (while the decoded buffer lives), then RGBA8 → RGB8.
        let to_rgba = if color == image::ColorType::Rgba8 {
            decoded
        } else {
            decoded + 4 * px
        };
        to_rgba.max(4 * px + 3 * px)
    } else {
        decoded + 3 * px
    };
    let coefficients = if format == image::ImageFormat::Jpeg && progressive_jpeg {
        px * u64::from(color.channel_count()) * 2
    } else {
        0
    };
    // Row buffers, palettes, Huffman tables: small, but not nothing.
    let slack = px / 8 + (1 << 20);
    converted + coefficients + slack
}

/// True for a JPEG whose first start-of-frame marker is progressive (SOF2,
/// or SOF6/SOF10/SOF14 for the rare differential/arithmetic variants).
fn jpeg_is_progressive(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        match marker {
            0xFF => i += 1,
            0xC0 | 0xC1 | 0xC3 | 0xC5 | 0xC7 | 0xC9 | 0xCB | 0xCD | 0xCF => return false,
            0xC2 | 0xC6 | 0xCA | 0xCE => return true,
            0xDA => return false,
            0xD0..=0xD9 | 0x01 => i += 2,
            _ => {
                let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
                i += 2 + len;
            }
        }
    }
    false
}

/// Decodes any supported format to 8-bit RGB, refusing images over
/// `max_pixels` and images whose decode would not fit the budget, and
/// waiting for room in the budget otherwise. Transparent pixels are
/// composited onto white, as product cut-outs are shown on marketplaces.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, PreprocessError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    let format = reader.format().ok_or(PreprocessError::NotAnImage)?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    if pixels > limits.max_pixels {
        return Err(PreprocessError::TooManyPixels {
            width,
            height,
            pixels,
            cap: limits.max_pixels,
        });
    }
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder pads a truncated scan with grey and reports
        // success; indexing half a picture would be worse than failing.
        return Err(PreprocessError::Decode(
            "truncated JPEG: no end-of-image marker after the last scan".into(),
        ));
    }
    let progressive = format == image::ImageFormat::Jpeg && jpeg_is_progressive(bytes);
    let cost = decode_cost(format, decoder.color_type(), width, height, progressive);
    let reservation = limits.reserve(cost)?;
    // Belt and braces: the decoder itself also refuses to allocate more than
    // the computed cost, whatever the header claimed.
    let mut caps = Limits::default();
    caps.max_image_width = Some(width);
    caps.max_image_height = Some(height);
    caps.max_alloc = Some(cost);
    decoder
        .set_limits(caps)
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    let img =
        DynamicImage::from_decoder(decoder).map_err(|e| PreprocessError::Decode(e.to_string()))?;
    Ok(Decoded {
        image: flatten_onto_white(img),
        _reservation: reservation,
    })
}

/// True when an end-of-image marker (FF D9) follows the last start-of-scan
/// (FF DA). Inside entropy-coded data every 0xFF byte is stuffed as FF 00,
/// so FF D9 there can only be the real marker.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

fn flatten_onto_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let a = u32::from(src[3]);
        for c in 0..3 {
            // Integer blend with white: (v·a + 255·(255 − a)) / 255, rounded.
            dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

thread_local! {
    // A resizer keeps scratch buffers; one per thread avoids reallocating
    // them for every image and needs no locking.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

fn filter(name: &str) -> ResizeAlg {
    match name {
        "nearest" => ResizeAlg::Nearest,
        "bicubic" => ResizeAlg::Convolution(FilterType::CatmullRom),
        "lanczos3" => ResizeAlg::Convolution(FilterType::Lanczos3),
        _ => ResizeAlg::Convolution(FilterType::Bilinear),
    }
}

/// The source rectangle `(left, top, width, height)` that, scaled to the
/// model's input size, equals "resize the short side to S, then centre-crop".
pub fn crop_box(src_w: u32, src_h: u32, m: &Manifest) -> (f64, f64, f64, f64) {
    let (w, h) = (f64::from(src_w), f64::from(src_h));
    let (out_w, out_h) = (f64::from(m.input.width), f64::from(m.input.height));
    match m.preprocess.resize_shortest_side.filter(|s| *s > 0) {
        Some(short) => {
            let scale = f64::from(short) / w.min(h);
            let cw = (out_w / scale).min(w);
            let ch = (out_h / scale).min(h);
            ((w - cw) / 2.0, (h - ch) / 2.0, cw, ch)
        }
        None => (0.0, 0.0, w, h),
    }
}

/// Resizes and crops to the model's input size with SIMD.
pub fn resize_for_model(img: &RgbImage, m: &Manifest) -> Result<RgbImage, PreprocessError> {
    let (w, h) = img.dimensions();
    let src = fast_image_resize::images::ImageRef::new(w, h, img.as_raw(), PixelType::U8x3)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    let mut dst = Image::new(m.input.width, m.input.height, PixelType::U8x3);
    let (left, top, cw, ch) = crop_box(w, h, m);
    let opts = ResizeOptions::new()
        .resize_alg(filter(&m.preprocess.filter))
        .crop(left, top, cw, ch);
    RESIZER
        .with(|r| r.borrow_mut().resize(&src, &mut dst, &opts))
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    RgbImage::from_raw(m.input.width, m.input.height, dst.into_vec())
        .ok_or_else(|| PreprocessError::Resize("resized buffer has the wrong size".into()))
}

/// Writes one normalised image into `out` (length 3·W·H) in the manifest's
/// layout and channel order.
pub fn write_tensor(img: &RgbImage, m: &Manifest, out: &mut [f32]) {
    let (w, h) = (m.input.width as usize, m.input.height as usize);
    debug_assert_eq!(out.len(), 3 * w * h);
    let bgr = m.input.channels == "BGR";
    // (x − mean) / std for every possible byte value: a table lookup per
    // sample instead of a subtract and a divide.
    let mut lut = [[0f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        let (mean, std) = (m.preprocess.mean[c], m.preprocess.std[c]);
        for (v, slot) in table.iter_mut().enumerate() {
            *slot = (v as f32 - mean) / std;
        }
    }
    let plane = w * h;
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for (c, table) in lut.iter().enumerate() {
            let src = if bgr { 2 - c } else { c };
            let v = table[px[src] as usize];
            match m.input.layout {
                Layout::Nchw => out[c * plane + i] = v,
                Layout::Nhwc => out[i * 3 + c] = v,
            }
        }
    }
}

/// The whole path for one image: decode, resize/crop, normalise.
pub fn preprocess(
    bytes: &[u8],
    m: &Manifest,
    limits: &DecodeLimits,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    let img = decode(bytes, limits)?;
    let resized = resize_for_model(&img, m)?;
    // The full-size pixels (and their share of the budget) go before the
    // tensor is written.
    drop(img);
    write_tensor(&resized, m, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::manifest::{InputSpec, OutputSpec, PreprocessSpec};

    fn manifest() -> Manifest {
        Manifest {
            name: "t".into(),
            file: "m.onnx".into(),
            sha256: None,
            input: InputSpec {
                name: "x".into(),
                width: 224,
                height: 224,
                layout: Layout::Nchw,
                channels: "RGB".into(),
            },
            preprocess: PreprocessSpec {
                resize_shortest_side: Some(256),
                crop: Some("center".into()),
                filter: "bilinear".into(),
                mean: [127.0; 3],
                std: [128.0; 3],
            },
            output: OutputSpec {
                name: "y".into(),
                dim: 4,
            },
            labels: None,
            supports_text: false,
        }
    }

    fn lim(max_pixels: u64) -> DecodeLimits {
        DecodeLimits::new(max_pixels, 1 << 30)
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 9])
        });
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    #[test]
    fn crop_box_matches_short_side_resize_then_centre_crop() {
        // 512x256: short side 256 → scale 1; crop 224x224 in the middle.
        let (l, t, w, h) = crop_box(512, 256, &manifest());
        assert_eq!((l, t, w, h), (144.0, 16.0, 224.0, 224.0));
    }

    #[test]
    fn produces_a_normalised_nchw_tensor() {
        let m = manifest();
        let mut out = vec![0f32; 3 * 224 * 224];
        preprocess(&png(300, 400), &m, &lim(1_000_000), &mut out).unwrap();
        // Blue channel is constant 9 → (9 − 127) / 128 everywhere in plane 2.
        let blue = &out[2 * 224 * 224..];
        assert!(
            blue.iter()
                .all(|v| (v - (9.0 - 127.0) / 128.0).abs() < 1e-3)
        );
        assert!(out.iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn refuses_bad_input_with_readable_errors() {
        assert!(matches!(
            decode(b"hello, not an image", &lim(1000)),
            Err(PreprocessError::NotAnImage)
        ));
        let full = png(64, 64);
        let err = decode(&full[..full.len() / 2], &lim(1_000_000)).unwrap_err();
        assert!(matches!(err, PreprocessError::Decode(_)), "{err:?}");
        let err = decode(&png(100, 100), &lim(5_000)).unwrap_err();
        assert!(err.to_string().contains("over the cap"), "{err}");
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        let jpeg = buf.into_inner();
        assert!(decode(&jpeg, &lim(1_000_000)).is_ok());
        let err = decode(&jpeg[..jpeg.len() * 2 / 3], &lim(1_000_000)).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn grayscale_progressive_and_cmyk_jpegs_decode_to_rgb() {
        // Grayscale: one channel, copied to R, G and B.
        let grey = image::GrayImage::from_fn(300, 200, |x, y| image::Luma([(x + y) as u8]));
        let mut buf = Cursor::new(Vec::new());
        grey.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        let img = decode(buf.get_ref(), &lim(1_000_000)).unwrap();
        assert_eq!(img.dimensions(), (300, 200));
        assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        // Both fixtures were made with Pillow from the same synthetic scene
        // (progressive=True; convert("CMYK"), Adobe inverted CMYK). At
        // (200, 200) the scene is its sine-shaded background, no disc or
        // line: R = 128 + 100·sin(200/23)·cos(200/31) ≈ 194, G = 200·255/W,
        // B = 200·255/H.
        let progressive = decode(
            include_bytes!("testdata/progressive_640x512.jpg"),
            &lim(1_000_000),
        )
        .unwrap();
        let cmyk = decode(include_bytes!("testdata/cmyk_600x520.jpg"), &lim(1_000_000)).unwrap();
        assert_eq!(progressive.dimensions(), (640, 512));
        assert_eq!(cmyk.dimensions(), (600, 520));
        for (img, w, h) in [(&progressive, 640.0, 512.0), (&cmyk, 600.0, 520.0)] {
            let expected = [
                128.0 + 100.0 * (200f32 / 23.0).sin() * (200f32 / 31.0).cos(),
                200.0 * 255.0 / w,
                200.0 * 255.0 / h,
            ];
            let p = img.get_pixel(200, 200);
            for c in 0..3 {
                assert!(
                    (f32::from(p[c]) - expected[c]).abs() < 12.0,
                    "{p:?} vs {expected:?}"
                );
            }
        }
    }

    #[test]
    fn corrupt_jpegs_fail_or_decode_but_never_panic() {
        let img = RgbImage::from_fn(640, 480, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        let bytes = buf.into_inner();
        for at in [30, 200, 600, bytes.len() / 3, bytes.len() - 40] {
            let mut bad = bytes.clone();
            for b in &mut bad[at..at + 16] {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
            let _ = decode(&bad, &lim(1_000_000));
        }
    }

    #[test]
    fn transparent_pixels_become_white() {
        let img = image::RgbaImage::from_pixel(2, 2, image::Rgba([0, 0, 0, 0]));
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(img));
        assert!(rgb.pixels().all(|p| p.0 == [255, 255, 255]));
    }
}
