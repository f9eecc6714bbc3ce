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
//!
//! A JPEG that is at least twice as large as the resize needs is decoded at
//! ½, ¼ or ⅛ of its size in the DCT domain ([`decode_for_model`], as
//! libjpeg-turbo's `scale_num` and Pillow's `Image.draft` do): the inverse
//! DCT, chroma upsampling and colour conversion then run on a quarter of the
//! pixels or fewer. The resize still goes from an image at least as large as
//! the model input down to it, with the same filter; only the source of its
//! pixels changes.

use std::{
    cell::RefCell,
    io::Cursor,
    panic::{AssertUnwindSafe, catch_unwind},
};

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
    let (format, width, height) = check_header(bytes, max_pixels)?;
    decode_full(bytes, format, width, height)
}

/// Sniffs the format and reads the dimensions from the header, refusing
/// empty images, images over `max_pixels` and truncated JPEGs before any
/// pixel buffer is allocated.
fn check_header(
    bytes: &[u8],
    max_pixels: u64,
) -> Result<(image::ImageFormat, u32, u32), PreprocessError> {
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
    Ok((format, width, height))
}

/// Decodes the whole image at full size with `image` (`zune-jpeg` for JPEG).
fn decode_full(
    bytes: &[u8],
    format: image::ImageFormat,
    width: u32,
    height: u32,
) -> Result<RgbImage, PreprocessError> {
    let pixels = u64::from(width) * u64::from(height);
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

/// A source rectangle `(left, top, width, height)` in pixels of a decoded
/// image, as [`crop_box`] returns it.
pub type CropBox = (f64, f64, f64, f64);

/// Decodes for the model: like [`decode`] (same checks, same errors), but a
/// JPEG large enough is decoded at a reduced size in the DCT domain. Returns
/// the image and the crop box to resize from, in that image's pixels.
pub fn decode_for_model(
    bytes: &[u8],
    m: &Manifest,
    max_pixels: u64,
) -> Result<(RgbImage, CropBox), PreprocessError> {
    let (format, width, height) = check_header(bytes, max_pixels)?;
    let scale = if format == image::ImageFormat::Jpeg {
        jpeg_scale(width, height, m)
    } else {
        8
    };
    if scale < 8
        && let Some(img) = decode_jpeg_scaled(bytes, width, height, scale)?
    {
        // The crop box of the full-size image, mapped into the scaled one:
        // scaled pixel i covers source pixels [8i/k, 8(i+1)/k), so the same
        // region is exactly the box times k/8. (The scaled image can be one
        // pixel larger than that, the decoder rounds its size up.)
        let f = f64::from(scale) / 8.0;
        let (l, t, w, h) = crop_box(width, height, m);
        return Ok((img, (l * f, t * f, w * f, h * f)));
    }
    let img = decode_full(bytes, format, width, height)?;
    let cb = crop_box(width, height, m);
    Ok((img, cb))
}

/// The DCT scale, in eighths (1, 2, 4 or 8 = full size), to decode a
/// `width`×`height` JPEG at: the smallest at which the region that the
/// resize reads (the crop box) still has at least the model's input size in
/// both directions, so the resize only ever reduces.
pub fn jpeg_scale(width: u32, height: u32, m: &Manifest) -> u32 {
    let (_, _, cw, ch) = crop_box(width, height, m);
    let (out_w, out_h) = (f64::from(m.input.width), f64::from(m.input.height));
    [1, 2, 4]
        .into_iter()
        .find(|&k| {
            let f = f64::from(k) / 8.0;
            cw * f >= out_w && ch * f >= out_h
        })
        .unwrap_or(8)
}

/// Decodes a JPEG at `scale`/8 of its size with `jpeg-decoder`, whose
/// `Decoder::scale` runs a reduced inverse DCT (4×4, 2×2 or 1×1 of each
/// 8×8 block). `Ok(None)` means "use the full-size decoder instead": CMYK
/// and 16-bit JPEGs, which are rare and which the full decoder already
/// converts to RGB correctly.
fn decode_jpeg_scaled(
    bytes: &[u8],
    width: u32,
    height: u32,
    scale: u32,
) -> Result<Option<RgbImage>, PreprocessError> {
    // Header dimensions are u16 in JPEG; anything else was not parsed by
    // this decoder, let the full one report it.
    let (Ok(w16), Ok(h16)) = (u16::try_from(width), u16::try_from(height)) else {
        return Ok(None);
    };
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        d.read_info()?;
        let Some(info) = d.info() else {
            return Ok(None);
        };
        // Both decoders parse the same header; if they disagree about the
        // size the file is odd enough to leave to the checked full path.
        if (info.width, info.height) != (w16, h16) {
            return Ok(None);
        }
        let channels = match info.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => 3,
            jpeg_decoder::PixelFormat::L8 => 1,
            jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => {
                return Ok(None);
            }
        };
        let target = |len: u16| ((u32::from(len) * scale).div_ceil(8)) as u16;
        let (sw, sh) = d.scale(target(w16), target(h16))?;
        // The decoder's own buffer limit: the scaled output and its
        // planes, well under the full image that the header check allowed.
        d.set_max_decoding_buffer_size(usize::from(w16) * usize::from(h16) * 4 + (16 << 20));
        let data = d.decode()?;
        Ok(Some((sw, sh, channels, data)))
    }));
    let (sw, sh, channels, data) = match decoded {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return Ok(None),
        Ok(Err(e)) => return Err(PreprocessError::Decode(jpeg_error(e))),
        Err(_) => {
            return Err(PreprocessError::Decode(
                "the JPEG decoder gave up on this file (internal panic)".into(),
            ));
        }
    };
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    // The decoder picks the scale from the requested size; check it picked
    // the one asked for, so the crop box mapping stays exact.
    let expected = |len: u32| (len * scale).div_ceil(8);
    if (sw, sh) != (expected(width), expected(height)) {
        return Err(PreprocessError::Decode(format!(
            "JPEG decoder scaled {width}x{height} to {sw}x{sh}, expected {}x{}",
            expected(width),
            expected(height)
        )));
    }
    let len = sw as usize * sh as usize;
    if data.len() != len * channels {
        return Err(PreprocessError::Decode(format!(
            "JPEG decoder returned {} bytes for {sw}x{sh}x{channels}",
            data.len()
        )));
    }
    let rgb = if channels == 3 {
        data
    } else {
        data.iter().flat_map(|&v| [v, v, v]).collect()
    };
    RgbImage::from_raw(sw, sh, rgb)
        .map(Some)
        .ok_or_else(|| PreprocessError::Decode("decoded buffer has the wrong size".into()))
}

fn jpeg_error(e: jpeg_decoder::Error) -> String {
    format!("JPEG: {e}")
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
pub fn crop_box(src_w: u32, src_h: u32, m: &Manifest) -> CropBox {
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
    resize_box(img, crop_box(w, h, m), m)
}

/// Resizes the `crop` rectangle of `img` to the model's input size with SIMD.
pub fn resize_box(
    img: &RgbImage,
    crop: CropBox,
    m: &Manifest,
) -> Result<RgbImage, PreprocessError> {
    let (w, h) = img.dimensions();
    let src = fast_image_resize::images::ImageRef::new(w, h, img.as_raw(), PixelType::U8x3)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    let mut dst = Image::new(m.input.width, m.input.height, PixelType::U8x3);
    let (left, top, cw, ch) = crop;
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

/// The whole path for one image: decode (scaled where possible),
/// resize/crop, normalise.
pub fn preprocess(
    bytes: &[u8],
    m: &Manifest,
    max_pixels: u64,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    let (img, crop) = decode_for_model(bytes, m, max_pixels)?;
    let resized = resize_box(&img, crop, m)?;
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

    /// A photo-like test image: smooth shading, hard edges, fine lines.
    fn scene(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32, y as f32);
            let wave = 128.0 + 100.0 * (fx / 23.0).sin() * (fy / 31.0).cos();
            let disc = ((fx - w as f32 / 2.0).powi(2) + (fy - h as f32 / 2.0).powi(2)).sqrt()
                < h as f32 / 4.0;
            let line = (x + 2 * y) % 97 < 3;
            if line {
                image::Rgb([10, 10, 10])
            } else if disc {
                image::Rgb([220, 40, 60])
            } else {
                image::Rgb([wave as u8, (x * 255 / w) as u8, (y * 255 / h) as u8])
            }
        })
    }

    fn jpeg(img: &DynamicImage, quality: u8) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut buf, quality,
        ))
        .unwrap();
        buf.into_inner()
    }

    /// The tensor of the previous path: full-size decode, then resize.
    fn full_decode_tensor(bytes: &[u8], m: &Manifest) -> Vec<f32> {
        let img = decode(bytes, 100_000_000).unwrap();
        let mut out = vec![0f32; 3 * 224 * 224];
        write_tensor(&resize_for_model(&img, m).unwrap(), m, &mut out);
        out
    }

    fn tensor(bytes: &[u8], m: &Manifest) -> Vec<f32> {
        let mut out = vec![0f32; 3 * 224 * 224];
        preprocess(bytes, m, 100_000_000, &mut out).unwrap();
        out
    }

    /// Mean absolute difference, in grey levels of 0–255 (the tensor is
    /// (v − 127) / 128, so one grey level is 1/128 in it).
    fn mean_abs_grey_levels(a: &[f32], b: &[f32]) -> f64 {
        let sum: f64 = a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).sum();
        sum / a.len() as f64 * 128.0
    }

    // Scaled decoding filters differently from a full decode followed by
    // the bilinear resize (the reduced IDCT is a sharper low-pass than the
    // resize's wide bilinear kernel), so the tensors are close, not equal.
    // Measured: 2.3–2.7 grey levels on the synthetic line art of these tests
    // (3-px black lines, the worst case for a filter change), about one on
    // the bench photos (benches/pipeline.rs prints it), whose embeddings
    // stay at cosine ≥ 0.98. A real mistake (a crop shifted by a few pixels,
    // swapped channels, a wrong colour conversion) costs 10 or more.
    const SCALED_TOLERANCE: f64 = 3.0;

    #[test]
    fn jpeg_scale_keeps_the_crop_at_least_the_model_input() {
        let m = manifest();
        // Short side 256 makes the crop 224: exactly enough. The crop box
        // is 224/256 of the short side, so k/8 · short · 224/256 ≥ 224.
        assert_eq!(jpeg_scale(512, 512, &m), 4);
        assert_eq!(jpeg_scale(511, 2000, &m), 8);
        assert_eq!(jpeg_scale(1280, 960, &m), 4);
        assert_eq!(jpeg_scale(1024, 1024, &m), 2);
        assert_eq!(jpeg_scale(4000, 3000, &m), 1);
        assert_eq!(jpeg_scale(2047, 2047, &m), 2);
    }

    #[test]
    fn scaled_decode_matches_full_decode_then_resize() {
        let m = manifest();
        for (w, h, scaled) in [(1280, 960, (640, 480)), (2200, 2100, (275, 263))] {
            let bytes = jpeg(&DynamicImage::ImageRgb8(scene(w, h)), 90);
            let (img, (l, t, cw, ch)) = decode_for_model(&bytes, &m, 100_000_000).unwrap();
            assert_eq!(img.dimensions(), scaled);
            assert!(cw >= 224.0 && ch >= 224.0, "{cw}x{ch}");
            assert!(l + cw <= f64::from(img.width()) && t + ch <= f64::from(img.height()));
            let d = mean_abs_grey_levels(&tensor(&bytes, &m), &full_decode_tensor(&bytes, &m));
            assert!(d < SCALED_TOLERANCE, "{w}x{h}: {d:.3} grey levels");
        }
    }

    #[test]
    fn grayscale_jpeg_decodes_scaled_to_grey_rgb() {
        let m = manifest();
        let grey = DynamicImage::ImageRgb8(scene(1024, 800)).into_luma8();
        let bytes = jpeg(&DynamicImage::ImageLuma8(grey), 90);
        let (img, _) = decode_for_model(&bytes, &m, 100_000_000).unwrap();
        assert_eq!(img.dimensions(), (512, 400));
        assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        let d = mean_abs_grey_levels(&tensor(&bytes, &m), &full_decode_tensor(&bytes, &m));
        assert!(d < SCALED_TOLERANCE, "{d:.3} grey levels");
    }

    fn box2(img: &RgbImage) -> RgbImage {
        RgbImage::from_fn(img.width() / 2, img.height() / 2, |x, y| {
            let mut p = [0u32; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let q = img.get_pixel(2 * x + dx, 2 * y + dy);
                for c in 0..3 {
                    p[c] += u32::from(q[c]);
                }
            }
            image::Rgb([(p[0] / 4) as u8, (p[1] / 4) as u8, (p[2] / 4) as u8])
        })
    }

    #[test]
    fn progressive_jpeg_decodes_scaled() {
        // Made with Pillow (`progressive=True`, quality 75).
        let bytes = include_bytes!("testdata/progressive_640x512.jpg");
        let m = manifest();
        let (img, _) = decode_for_model(bytes, &m, 100_000_000).unwrap();
        assert_eq!(img.dimensions(), (320, 256));
        let d = mean_abs_grey_levels(&tensor(bytes, &m), &full_decode_tensor(bytes, &m));
        assert!(d < SCALED_TOLERANCE, "{d:.3} grey levels");
        // The half-size image itself is close to the 2×2 average of the
        // full decode (a reduced IDCT is a slightly sharper low-pass).
        let boxed = box2(&decode(bytes, 100_000_000).unwrap());
        let sum: u64 = img
            .as_raw()
            .iter()
            .zip(boxed.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let e = sum as f64 / img.as_raw().len() as f64;
        assert!(
            e < SCALED_TOLERANCE,
            "{e:.3} grey levels from the 2×2 average"
        );
    }

    #[test]
    fn cmyk_jpeg_falls_back_to_the_full_decoder() {
        // Made with Pillow (`convert("CMYK")`, Adobe inverted CMYK). Large
        // enough to be scaled, but only the full decoder converts CMYK.
        let bytes = include_bytes!("testdata/cmyk_600x520.jpg");
        let m = manifest();
        let (img, _) = decode_for_model(bytes, &m, 100_000_000).unwrap();
        assert_eq!(img.dimensions(), (600, 520));
        assert_eq!(tensor(bytes, &m), full_decode_tensor(bytes, &m));
    }

    #[test]
    fn a_jpeg_too_small_to_scale_decodes_at_full_size() {
        let m = manifest();
        let bytes = jpeg(&DynamicImage::ImageRgb8(scene(400, 300)), 90);
        let (img, crop) = decode_for_model(&bytes, &m, 100_000_000).unwrap();
        assert_eq!(img.dimensions(), (400, 300));
        assert_eq!(crop, crop_box(400, 300, &m));
        assert_eq!(tensor(&bytes, &m), full_decode_tensor(&bytes, &m));
    }

    #[test]
    fn a_scalable_jpeg_still_fails_cleanly_when_truncated_or_corrupt() {
        let m = manifest();
        let bytes = jpeg(&DynamicImage::ImageRgb8(scene(1280, 960)), 90);
        let mut out = vec![0f32; 3 * 224 * 224];
        let err = preprocess(&bytes[..bytes.len() / 2], &m, 100_000_000, &mut out).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        // Over the pixel cap: refused from the header, before decoding.
        let err = preprocess(&bytes, &m, 1_000_000, &mut out).unwrap_err();
        assert!(err.to_string().contains("over the cap"), "{err}");
        // Garbage in the tables and the scan: an error or some picture,
        // never a panic.
        for at in [30, 200, 600, bytes.len() / 3, bytes.len() - 40] {
            let mut bad = bytes.clone();
            for b in &mut bad[at..at + 16] {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
            let _ = preprocess(&bad, &m, 100_000_000, &mut out);
        }
    }

    #[test]
    fn transparent_pixels_become_white() {
        let img = image::RgbaImage::from_pixel(2, 2, image::Rgba([0, 0, 0, 0]));
        let rgb = flatten_onto_white(DynamicImage::ImageRgba8(img));
        assert!(rgb.pixels().all(|p| p.0 == [255, 255, 255]));
    }
}
