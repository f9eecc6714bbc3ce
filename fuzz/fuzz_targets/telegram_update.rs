#![no_main]
//! `cargo +nightly fuzz run telegram_update`: see `fuzz/targets.rs` for what it checks.

#[path = "../targets.rs"]
#[allow(dead_code)]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::telegram_update(data));
