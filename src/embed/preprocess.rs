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

use std::{cell::RefCell, io::Cursor};

use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images::Image};
use image::{DynamicImage, ImageReader, Limits, RgbImage};

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
    #[error("image has no pixels ({width}x{height})")]
    Empty { width: u32, height: u32 },
    #[error("corrupt or truncated image: {0}")]
    Decode(String),
    #[error("resize failed: {0}")]
    Resize(String),
}

/// Decodes any supported format to 8-bit RGB, refusing images over
/// `max_pixels`. Transparent pixels are composited onto white, as product
/// cut-outs are shown on marketplaces.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, PreprocessError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    let format = reader.format().ok_or(PreprocessError::NotAnImage)?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(PreprocessError::Empty { width, height });
    }
    if pixels > max_pixels {
        return Err(PreprocessError::TooManyPixels {
            width,
            height,
            pixels,
            cap: max_pixels,
        });
    }
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder pads a truncated scan with grey and reports
        // success; indexing half a picture would be worse than failing.
        return Err(PreprocessError::Decode(
            "truncated JPEG: no end-of-image marker after the last scan".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Belt and braces: the decoder itself also refuses to allocate more than
    // the declared image needs (RGBA16 at most) plus slack.
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(pixels * 8 + (64 << 20));
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    Ok(flatten_onto_white(img))
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
    max_pixels: u64,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    let img = decode(bytes, max_pixels)?;
    let resized = resize_for_model(&img, m)?;
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
        preprocess(&png(300, 400), &m, 1_000_000, &mut out).unwrap();
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
        assert_eq!(
            decode(b"hello, not an image", 1000),
            Err(PreprocessError::NotAnImage)
        );
        let full = png(64, 64);
        let err = decode(&full[..full.len() / 2], 1_000_000).unwrap_err();
        assert!(matches!(err, PreprocessError::Decode(_)), "{err:?}");
        let err = decode(&png(100, 100), 5_000).unwrap_err();
        assert!(err.to_string().contains("over the cap"), "{err}");
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        let jpeg = buf.into_inner();
        assert!(decode(&jpeg, 1_000_000).is_ok());
        let err = decode(&jpeg[..jpeg.len() * 2 / 3], 1_000_000).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn grayscale_progressive_and_cmyk_jpegs_decode_to_rgb() {
        // Grayscale: one channel, copied to R, G and B.
        let grey = image::GrayImage::from_fn(300, 200, |x, y| image::Luma([(x + y) as u8]));
        let mut buf = Cursor::new(Vec::new());
        grey.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        let img = decode(buf.get_ref(), 1_000_000).unwrap();
        assert_eq!(img.dimensions(), (300, 200));
        assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        // Both fixtures were made with Pillow from the same synthetic scene
        // (progressive=True; convert("CMYK"), Adobe inverted CMYK). At
        // (200, 200) the scene is its sine-shaded background, no disc or
        // line: R = 128 + 100·sin(200/23)·cos(200/31) ≈ 194, G = 200·255/W,
        // B = 200·255/H.
        let progressive = decode(
            include_bytes!("testdata/progressive_640x512.jpg"),
            1_000_000,
        )
        .unwrap();
        let cmyk = decode(include_bytes!("testdata/cmyk_600x520.jpg"), 1_000_000).unwrap();
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
            let _ = decode(&bad, 1_000_000);
        }
    }

    #[test]
    fn transparent_pixels_become_white() {
        let img = image::RgbaImage::from_pixel(2, 2, image::Rgba([0, 0, 0, 0]));
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(img));
        assert!(rgb.pixels().all(|p| p.0 == [255, 255, 255]));
    }
}
