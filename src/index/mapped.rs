//! A read-only memory map of `vectors.i8`, the int8 codes every search
//! reads, so that they live in the OS page cache rather than on the heap:
//! at 100k × 1280-d that is 128 MB of file-backed memory (`RssFile`, which
//! the kernel can drop and re-read under pressure) instead of anonymous heap
//! (`RssAnon`, which it can only swap).
//!
//! # Why this is the one `unsafe` in the crate
//! Mapping a file is `unsafe` because the bytes behind the returned slice
//! can change under it if the file is written meanwhile. Here the index's
//! own writer does write `vectors.i8` (with `pwrite`, never truncating it),
//! but only ever into slots that no reader looks at: a new slot, or a free
//! one whose point was removed from the searchable state under the state's
//! write lock before the slot was reused. A slot becomes visible to readers
//! only by a later swap under that same lock, which orders the write before
//! any read. The file is never shrunk below its map or replaced while
//! mapped, so no access can fault: the one truncation, undoing a failed
//! write's growth (`embedded/writer.rs`), goes back to the length before
//! that write, which the map never exceeds; compaction rewrites only the
//! log. No other process writes it meanwhile: every process that opens the
//! index holds the exclusive lock on its directory (`embedded/format.rs`).
//! (That lock is advisory: a process that is not Vitrine, or a person, can
//! still truncate the file, and the next search touching the lost pages
//! dies with SIGBUS.) This is how Qdrant's and tantivy's mmap storage work,
//! too.

#![allow(unsafe_code)]

use std::{fs::File, io};

use memmap2::{Mmap, MmapOptions};

#[derive(Default)]
pub struct MappedCodes {
    map: Option<Mmap>,
}

impl MappedCodes {
    /// Maps the whole of `file` (nothing, if it is empty).
    pub fn map(file: &File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Self { map: None });
        }
        // SAFETY: see the module doc: the file is only appended to or
        // written in slots no reader uses, never truncated below a live
        // map, and no other process writes it (the directory lock).
        let map = unsafe { MmapOptions::new().len(len as usize).map(file)? };
        Ok(Self { map: Some(map) })
    }

    /// The mapped bytes as int8 codes.
    pub fn as_i8(&self) -> &[i8] {
        match &self.map {
            Some(m) => bytemuck::cast_slice(&m[..]),
            None => &[],
        }
    }

    /// Mapped length in bytes (the file's length when mapped).
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }
}
