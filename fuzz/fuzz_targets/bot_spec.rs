#![no_main]
//! `cargo +nightly fuzz run bot_spec`: see `fuzz/targets.rs` for what it checks.

#[path = "../targets.rs"]
#[allow(dead_code)]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::bot_spec(data));
