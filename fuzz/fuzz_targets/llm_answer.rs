#![no_main]
//! `cargo +nightly fuzz run llm_answer`: see `fuzz/targets.rs` for what it checks.

#[path = "../targets.rs"]
#[allow(dead_code)]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::llm_answer(data));
