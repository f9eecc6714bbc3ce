//! The test photos and the two resizers, as `vitrine bench ingest|resize`
//! and `benches/pipeline.rs` (and, for the file bytes, `benches/search.rs`)
//! use them: so that the CLI and criterion measure the same inputs the same
//! way.
//!
//! Why a file under `benches/common/` that the binary includes with
//! `#[path]` (`src/cli/bench/mod.rs`), rather than a library module: these
//! helpers exist only to measure, and the library's API is what the service
//! needs. A bench target cannot depend on the binary, and a crate of its own
//! for ~150 lines would cost a workspace; so the one copy lives beside the
//! benches and both sides compile it. It therefore names the library as
//! `vitrine::…`, which both the binary and the bench targets link to.

// Each includer uses its own subset (the binary never reads `Photo::bytes`).
#![allow(dead_code)]

use std::{
    io::Cursor,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use fast_image_resize::{
    FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    images::{Image, ImageRef},
};
use image::{RgbImage, codecs::jpeg::JpegEncoder, imageops};
use vitrine::embed::preprocess;

/// The side of the resize comparison's output, the model's input size.
pub const RESIZE_SIDE: u32 = 224;

/// The files in `dir` (not its folders), sorted by name, as (file name,
/// bytes).
pub fn read_files(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "cannot read {} (scripts/fetch-assets.sh provides tests/data/photos)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok((p.file_name().unwrap().to_string_lossy().into_owned(), bytes))
        })
        .collect()
}

/// One photo: its file name, the file's bytes and the decoded image.
pub struct Photo {
    pub name: String,
    pub bytes: Vec<u8>,
    pub image: RgbImage,
}

/// The first `limit` images in `dir` (sorted by name), decoded with the
/// service's checked decoder. Files that are not images are skipped; any
/// other decoding error is one.
pub fn load_photos(dir: &Path, max_pixels: u64, limit: usize) -> anyhow::Result<Vec<Photo>> {
    let mut out = Vec::new();
    // One image at a time, each kept as plain pixels: no budget to share.
    let limits = preprocess::DecodeLimits::new(max_pixels, u64::MAX);
    for (name, bytes) in read_files(dir)? {
        if out.len() == limit {
            break;
        }
        match preprocess::decode(&bytes, &limits) {
            Ok(decoded) => out.push(Photo {
                name,
                bytes,
                image: decoded.image,
            }),
            Err(preprocess::PreprocessError::NotAnImage) => continue,
            Err(e) => bail!("{}: {e}", dir.join(&name).display()),
        }
    }
    if out.is_empty() {
        bail!("no images in {}", dir.display());
    }
    Ok(out)
}

/// JPEG quality 90, the form product photos usually arrive in.
pub fn encode_jpeg(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))?;
    Ok(out.into_inner())
}

/// `fast_image_resize`, bilinear, to `RESIZE_SIDE`² (the whole image, no
/// crop, to compare like with like: `imageops::resize` cannot crop).
pub fn resize_fir(resizer: &mut Resizer, img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let (w, h) = img.dimensions();
    let src = ImageRef::new(w, h, img.as_raw(), PixelType::U8x3)?;
    let mut dst = Image::new(RESIZE_SIDE, RESIZE_SIDE, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    resizer.resize(&src, &mut dst, &opts)?;
    Ok(dst.into_vec())
}

/// `image::imageops::resize` with the same filter (bilinear = `Triangle`)
/// and output.
pub fn resize_imageops(img: &RgbImage) -> Vec<u8> {
    imageops::resize(
        img,
        RESIZE_SIDE,
        RESIZE_SIDE,
        imageops::FilterType::Triangle,
    )
    .into_raw()
}

/// That the two resizers give the same output: the mean over `images` of
/// the mean absolute difference per channel value (of 255).
pub fn resize_diff<'a>(
    resizer: &mut Resizer,
    images: impl ExactSizeIterator<Item = &'a RgbImage>,
) -> anyhow::Result<f64> {
    let n = images.len() as f64;
    let mut diff = 0.0;
    for img in images {
        let (a, b) = (resize_fir(resizer, img)?, resize_imageops(img));
        let sum: u64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        diff += sum as f64 / b.len() as f64 / n;
    }
    Ok(diff)
}
