//! Decode memory, counted: every allocation in this test binary goes
//! through a counting allocator, so these tests check what decoding really
//! allocates against the cost the decoder reserves from the budget
//! (`embed::preprocess::decode_cost`), and that the budget bounds many
//! decodes at once. Each test holds `SERIAL`, so no other test's
//! allocations are counted in its figures.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    io::Cursor,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage, Rgba};
use vitrine::embed::preprocess::{DecodeLimits, PreprocessError, decode, decode_cost};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator and only adds bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

/// Peak bytes allocated above the starting point while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (out, peak as u64)
}

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    match format {
        ImageFormat::WebP => img
            .write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut buf))
            .unwrap(),
        _ => img.write_to(&mut buf, format).unwrap(),
    }
    buf.into_inner()
}

/// A GIF whose logical screen is `w × h` but whose only frame is 1×1: the
/// decoder still paints the whole screen.
fn gif_canvas(w: u16, h: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend(w.to_le_bytes());
    g.extend(h.to_le_bytes());
    g.extend([0x80, 0, 0]); // global colour table of 2 entries
    g.extend([0, 0, 0, 255, 255, 255]);
    g.extend([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // a 1×1 frame at (0, 0)
    g.extend([0x02, 0x02, 0x44, 0x01, 0x00]); // LZW: clear, index 0, end
    g.push(0x3B);
    g
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 7) as u8, (y * 3) as u8, (x ^ y) as u8])
    })
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let (w, h) = (1600, 1200);
    let rgb = gradient(w, h);
    let rgba8 = DynamicImage::ImageRgba8(ImageBuffer::from_fn(w, h, |x, y| {
        Rgba([(x * 7) as u8, (y * 3) as u8, 9, (x + y) as u8])
    }));
    let rgba16 = DynamicImage::ImageRgba16(ImageBuffer::from_fn(w, h, |x, y| {
        Rgba([(x * 40) as u16, (y * 50) as u16, 9, ((x + y) * 20) as u16])
    }));
    let grey = DynamicImage::ImageLuma8(ImageBuffer::from_fn(w, h, |x, y| Luma([(x ^ y) as u8])));
    vec![
        (
            "baseline JPEG",
            encode(DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Jpeg),
        ),
        (
            "progressive JPEG",
            include_bytes!("../src/embed/testdata/progressive_640x512.jpg").to_vec(),
        ),
        (
            "RGB8 PNG",
            encode(DynamicImage::ImageRgb8(rgb), ImageFormat::Png),
        ),
        ("RGBA8 PNG", encode(rgba8.clone(), ImageFormat::Png)),
        ("RGBA16 PNG", encode(rgba16, ImageFormat::Png)),
        ("grey PNG", encode(grey, ImageFormat::Png)),
        ("RGBA WebP", encode(rgba8, ImageFormat::WebP)),
        ("GIF canvas 3000x3000, 1x1 frame", gif_canvas(3000, 3000)),
    ]
}

fn cost_of(bytes: &[u8]) -> u64 {
    use image::ImageDecoder;
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .unwrap();
    let format = reader.format().unwrap();
    let d = reader.into_decoder().unwrap();
    let (w, h) = d.dimensions();
    let progressive = format == ImageFormat::Jpeg && bytes.windows(2).any(|p| p == [0xFF, 0xC2]);
    decode_cost(format, d.color_type(), w, h, progressive)
}

#[test]
fn the_reserved_cost_covers_what_decoding_allocates_and_is_not_far_above_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let limits = DecodeLimits::new(100_000_000, 4 << 30);
    for (name, bytes) in cases() {
        let cost = cost_of(&bytes);
        let (decoded, peak) = peak_during(|| decode(&bytes, &limits).map(|d| d.dimensions()));
        decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{name}: peak {peak} B, reserved {cost} B");
        assert!(
            peak <= cost,
            "{name}: decoding allocated {peak} B at its peak, more than the {cost} B it reserved"
        );
        // A cost far above the truth would refuse good images and starve
        // the budget: within 2× of the measured peak, plus the fixed slack.
        assert!(
            cost <= 2 * peak + (2 << 20),
            "{name}: reserved {cost} B for a peak of only {peak} B"
        );
        assert_eq!(
            limits.in_flight_bytes(),
            0,
            "{name}: reservation given back"
        );
    }
}

#[test]
fn a_gif_canvas_is_charged_for_the_whole_screen_and_refused_over_the_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // The audit's GIF: a 6000² logical screen with a 1×1 frame cost 250 MB.
    // Under the pixel cap (36 MP < 40 MP), but not under a 128 MiB budget,
    // and refused before the canvas is allocated.
    let gif = gif_canvas(6000, 6000);
    let limits = DecodeLimits::new(40_000_000, 128 << 20);
    let (result, peak) = peak_during(|| decode(&gif, &limits).map(|d| d.dimensions()));
    let err = result.unwrap_err();
    assert!(matches!(err, PreprocessError::OverBudget { .. }), "{err:?}");
    assert!(err.to_string().contains("decode budget"), "{err}");
    assert!(peak < 4 << 20, "refusing allocated {peak} B");
}

#[test]
fn many_decodes_at_once_stay_within_the_budget_and_all_succeed() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let png = encode(
        DynamicImage::ImageRgba16(ImageBuffer::from_fn(1500, 1000, |x, y| {
            Rgba([(x * 40) as u16, (y * 50) as u16, 9, 65535])
        })),
        ImageFormat::Png,
    );
    let one = cost_of(&png);
    // Room for two at a time; eight threads ask at once.
    let budget = 2 * one + (64 << 10);
    let limits = DecodeLimits::new(40_000_000, budget);
    let ((), peak) = peak_during(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| decode(&png, &limits).map(|d| d.dimensions())))
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap().unwrap(), (1500, 1000));
            }
        });
    });
    println!("8 decodes of {one} B each under a {budget} B budget: peak {peak} B");
    // Thread stacks and the PNG bytes are not pixels: a little headroom.
    assert!(
        peak <= budget + (4 << 20),
        "peak {peak} B over the budget of {budget} B"
    );
    assert!(
        peak > one,
        "the decodes ran (peak {peak} B, one image {one} B)"
    );
    assert_eq!(limits.in_flight_bytes(), 0);
}
