//! Reading images from the local file system (a `file://` base).
//!
//! What the audit showed: the metadata length is 0 for `/dev/zero`, `/proc`
//! files and FIFOs, so a size check on it proves nothing; a FIFO blocks a
//! reader until someone writes to it; a symlink inside the base may point
//! anywhere. So:
//! - both the base and the file are canonicalised, and the file must lie
//!   under the base (symlinks that stay inside are fine);
//! - only regular files are read: the type is checked before opening (so a
//!   FIFO is never opened) and again on the opened handle (so a file
//!   swapped in between is caught), and the open is non-blocking;
//! - the bytes are streamed with the byte cap, whatever the metadata says;
//! - the whole read runs under the fetch timeout.
//!
//! Failures: a missing file is "not found", anything that is not a regular
//! file under the base is "refused", and an I/O error is permanent unless it
//! is a passing condition (out of file descriptors, interrupted, busy). A
//! failed allocation is permanent too: the cap bounds what we ask for, so
//! asking again would fail again.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::FetchError;

/// Reads `path`, which must be a regular file under `base_dir`.
pub(super) async fn read_under(
    base_dir: &Path,
    path: &Path,
    cap: usize,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    let shown = path.display().to_string();
    match tokio::time::timeout(timeout, read(base_dir, path, cap, &shown)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(shown)),
    }
}

async fn read(base_dir: &Path, path: &Path, cap: usize, shown: &str) -> Result<Bytes, FetchError> {
    let refused = |reason: &str| FetchError::Refused {
        url: shown.to_string(),
        reason: reason.to_string(),
    };
    let base = tokio::fs::canonicalize(base_dir)
        .await
        .map_err(|e| io_error(&base_dir.display().to_string(), e))?;
    let real: PathBuf = tokio::fs::canonicalize(path)
        .await
        .map_err(|e| io_error(shown, e))?;
    if !real.starts_with(&base) {
        return Err(refused("the file lies outside the image base directory"));
    }
    // `real` has no symlinks left, so this is the file itself.
    let meta = tokio::fs::metadata(&real)
        .await
        .map_err(|e| io_error(shown, e))?;
    if !meta.is_file() {
        return Err(refused("not a regular file"));
    }
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        // A FIFO swapped in after the check must not block the open.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&real)
        .await
        .map_err(|e| io_error(shown, e))?;
    let meta = file.metadata().await.map_err(|e| io_error(shown, e))?;
    if !meta.is_file() {
        return Err(refused("not a regular file"));
    }
    let mut body: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut chunk)
            .await
            .map_err(|e| io_error(shown, e))?;
        if n == 0 {
            break;
        }
        if body.len() + n > cap {
            return Err(FetchError::TooLarge {
                url: shown.to_string(),
                cap,
            });
        }
        body.try_reserve(n).map_err(|e| FetchError::Local {
            url: shown.to_string(),
            reason: format!("out of memory: {e}"),
            transient: false,
        })?;
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Bytes::from(body))
}

fn io_error(shown: &str, e: std::io::Error) -> FetchError {
    if e.kind() == ErrorKind::NotFound {
        return FetchError::NotFound(shown.to_string());
    }
    let transient = matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ResourceBusy)
        || matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN)
        );
    FetchError::Local {
        url: shown.to_string(),
        reason: e.to_string(),
        transient,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    const CAP: usize = 1024;
    const T: Duration = Duration::from_secs(2);

    async fn read_at(base: &Path, rel: &str) -> Result<Bytes, FetchError> {
        read_under(base, &base.join(rel), CAP, T).await
    }

    #[tokio::test]
    async fn reads_regular_files_and_symlinks_that_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"png").unwrap();
        std::os::unix::fs::symlink("a.png", dir.path().join("b.png")).unwrap();
        assert_eq!(&read_at(dir.path(), "a.png").await.unwrap()[..], b"png");
        assert_eq!(&read_at(dir.path(), "b.png").await.unwrap()[..], b"png");
        assert!(matches!(
            read_at(dir.path(), "missing.png").await,
            Err(FetchError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn symlinks_out_of_the_base_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.png"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::create_dir(&base).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.png"), base.join("s.png")).unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("d")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", base.join("zero.png")).unwrap();
        for rel in ["s.png", "d/secret.png", "zero.png"] {
            let err = read_at(&base, rel).await.unwrap_err();
            assert!(matches!(err, FetchError::Refused { .. }), "{rel}: {err:?}");
        }
        // A path that names the outside directly (what a traversal would
        // produce) is refused the same way.
        let err = read_under(&base, &outside.path().join("secret.png"), CAP, T)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.png");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        std::fs::create_dir(dir.path().join("sub.png")).unwrap();
        let started = Instant::now();
        for rel in ["pipe.png", "sub.png"] {
            let err = read_at(dir.path(), rel).await.unwrap_err();
            assert!(matches!(err, FetchError::Refused { .. }), "{rel}: {err:?}");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        // A device as the base itself: /dev/zero's metadata says 0 bytes.
        let err = read_under(Path::new("/dev"), Path::new("/dev/zero"), CAP, T)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn the_cap_holds_while_streaming() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.png"), vec![7u8; CAP]).unwrap();
        std::fs::write(dir.path().join("big.png"), vec![7u8; CAP + 1]).unwrap();
        assert_eq!(read_at(dir.path(), "ok.png").await.unwrap().len(), CAP);
        assert!(matches!(
            read_at(dir.path(), "big.png").await,
            Err(FetchError::TooLarge { .. })
        ));
        // /proc files are regular files whose metadata length is 0 while
        // their content is not: only the streaming cap stops them.
        let meta = std::fs::metadata("/proc/self/maps").unwrap();
        assert_eq!(meta.len(), 0);
        let err = read_under(Path::new("/proc/self"), Path::new("/proc/self/maps"), 16, T)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
    }
}
