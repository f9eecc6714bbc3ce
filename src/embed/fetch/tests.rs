//! The fetcher end to end, against small local servers.

use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::*;

fn fetcher_with(base: Option<&str>, allow: &str, proxy: Option<&str>) -> ImageFetcher {
    ImageFetcher::new(FetchConfig {
        base_url: base.map(|b| Url::parse(b).unwrap()),
        allow: AllowList::parse(allow.split(',')).unwrap(),
        proxy: proxy.map(|p| Url::parse(p).unwrap()),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        max_bytes: 1024,
    })
    .unwrap()
}

fn fetcher(base: Option<&str>, allow: &str) -> ImageFetcher {
    fetcher_with(base, allow, None)
}

/// A one-answer HTTP server on a thread: every connection gets `response`;
/// it counts connections and keeps each request head.
struct Fake {
    port: u16,
    hits: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn start(response: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (h, r) = (hits.clone(), heads.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    buf.push(byte[0]);
                }
                r.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let _ = conn.write_all(response.as_bytes());
            }
        });
        Self { port, hits, heads }
    }

    fn ok(body: &str) -> Self {
        Self::start(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    fn redirect(to: &str) -> Self {
        Self::start(format!(
            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ))
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

fn refused(r: Result<impl std::fmt::Debug, FetchError>) -> bool {
    matches!(r, Err(FetchError::Refused { .. }))
}

#[test]
fn keys_resolve_below_the_base_only() {
    let f = fetcher(Some("https://img.example.com/products/"), "");
    assert_eq!(
        f.resolve(&ImageRef::Key("a/b.jpg".into()))
            .unwrap()
            .as_str(),
        "https://img.example.com/products/a/b.jpg"
    );
    for key in [
        "../secret",
        "/etc/passwd",
        "%2e%2e/x",
        "file:etc/passwd",
        "a\\..\\..\\x",
    ] {
        assert!(refused(f.resolve(&ImageRef::Key(key.into()))), "{key}");
    }
    assert!(
        f.resolve(&ImageRef::Url("file:///etc/passwd".into()))
            .is_err()
    );
    assert!(matches!(
        fetcher(None, "").resolve(&ImageRef::Key("x.jpg".into())),
        Err(FetchError::NoBaseUrl(_))
    ));
}

#[tokio::test]
async fn file_keys_stay_in_the_base_directory() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("images");
    std::fs::create_dir(&base).unwrap();
    std::fs::write(base.join("in.png"), b"inside").unwrap();
    std::fs::write(dir.path().join("outside.png"), b"outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.png"), base.join("link.png")).unwrap();
    let base_url = Url::from_directory_path(&base).unwrap();
    let f = fetcher(Some(base_url.as_str()), "");
    let got = f.fetch(&ImageRef::Key("in.png".into())).await.unwrap();
    assert_eq!(&got[..], b"inside");
    for key in [
        "%2e%2e/outside.png",
        ".%2e/outside.png",
        "..\\outside.png",
        "..%2foutside.png",
        "../outside.png",
        "link.png",
    ] {
        let err = f.fetch(&ImageRef::Key(key.into())).await.unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{key}: {err:?}");
        // The public text names no path.
        assert_eq!(err.to_string(), "image URL refused", "{key}");
    }
    let err = f
        .fetch(&ImageRef::Key("missing.png".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::NotFound(_)));
    assert_eq!(err.to_string(), "image not found");
    assert!(err.detail().contains("missing.png"), "{}", err.detail());
    // A relative `file:` key against an https base was `file:///etc/passwd`.
    let f = fetcher(Some("https://img.example.com/p/"), "");
    assert!(refused(
        f.fetch(&ImageRef::Key("file:etc/passwd".into())).await
    ));
}

#[tokio::test]
async fn refuses_internal_targets_unless_allowed() {
    let f = fetcher(None, "");
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9/x.jpg",
        "http://[::127.0.0.1]:9/x.jpg",
        "http://[::ffff:127.0.0.1]:9/x.jpg",
        "http://[64:ff9b::7f00:1]:9/x.jpg",
        "http://[2002:7f00:1::1]:9/x.jpg",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:9/x.jpg",
        "http://[2001:db8::1]:9/x.jpg",
        "http://240.0.0.1:9/x.jpg",
        "http://192.0.2.1:9/x.jpg",
    ] {
        let err = f.fetch(&ImageRef::Url(url.into())).await.unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{url}: {err:?}");
    }
    // Allow-listed: the request is made (and fails to connect instead).
    let f = fetcher(None, "127.0.0.0/8");
    let err = f
        .fetch(&ImageRef::Url("http://127.0.0.1:9/x.jpg".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Network { .. }), "{err:?}");
    // The public text is the class only: no address, no connect error.
    assert_eq!(err.to_string(), "image host unreachable");
    assert!(err.detail().contains("127.0.0.1:9"), "{}", err.detail());
}

#[tokio::test]
async fn the_base_host_is_allowed_on_its_own_port_only() {
    let base = Fake::ok("base");
    let other = Fake::ok("other");
    let f = fetcher(Some(&base.base()), "");
    let got = f.fetch(&ImageRef::Key("x.jpg".into())).await.unwrap();
    assert_eq!(&got[..], b"base");
    let got = f
        .fetch(&ImageRef::Url(format!("{}y.jpg", base.base())))
        .await
        .unwrap();
    assert_eq!(&got[..], b"base");
    let err = f
        .fetch(&ImageRef::Url(format!("{}x.jpg", other.base())))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
    assert_eq!(other.hits(), 0);
}

#[tokio::test]
async fn allow_list_ports_are_honoured() {
    let a = Fake::ok("a");
    let b = Fake::ok("b");
    let f = fetcher(None, &format!("127.0.0.1:{}", a.port));
    let got = f
        .fetch(&ImageRef::Url(format!("{}x", a.base())))
        .await
        .unwrap();
    assert_eq!(&got[..], b"a");
    assert!(refused(
        f.fetch(&ImageRef::Url(format!("{}x", b.base()))).await
    ));
    // A host entry with a port: the name is trusted on that port only.
    let f = fetcher(None, &format!("localhost:{}", a.port));
    let got = f
        .fetch(&ImageRef::Url(format!("http://localhost:{}/x", a.port)))
        .await
        .unwrap();
    assert_eq!(&got[..], b"a");
    assert!(refused(
        f.fetch(&ImageRef::Url(format!("http://localhost:{}/x", b.port)))
            .await
    ));
    assert_eq!(b.hits(), 0);
}

#[tokio::test]
async fn redirects_are_checked_hop_by_hop() {
    let target = Fake::ok("internal");
    for to in [
        format!("http://127.0.0.2:{}/x", target.port),
        format!("http://localhost:{}/x", target.port),
        format!("http://[::ffff:127.0.0.1]:{}/x", target.port),
        "file:///etc/passwd".to_string(),
    ] {
        let hop = Fake::redirect(&to);
        let f = fetcher(Some(&hop.base()), "");
        let err = f.fetch(&ImageRef::Key("a.jpg".into())).await.unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{to}: {err:?}");
    }
    assert_eq!(target.hits(), 0);
    // A redirect within the base host is followed: here round and round,
    // until the bound.
    let hop = Fake::redirect("/b.jpg");
    let f = fetcher(Some(&hop.base()), "");
    let err = f.fetch(&ImageRef::Key("a.jpg".into())).await.unwrap_err();
    assert!(
        err.detail().contains("too many redirects"),
        "{}",
        err.detail()
    );
}

const CHILD: &str = "VITRINE_TEST_PROXY_CHILD";

/// reqwest would take `HTTP_PROXY` & co. from the environment, and then only
/// the proxy's name reaches the guard. The environment is process-wide, so
/// the fetch runs in a child process of this test binary.
#[test]
fn environment_proxies_are_ignored() {
    if std::env::var_os(CHILD).is_some() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let f = fetcher(None, "");
            let err = f
                .fetch(&ImageRef::Url("http://localhost:9/x.jpg".into()))
                .await
                .unwrap_err();
            assert!(matches!(err, FetchError::Refused { .. }), "{err:?}");
            // Allow-listed targets are reached directly, not via the proxy.
            let f = fetcher(None, "127.0.0.1");
            let err = f
                .fetch(&ImageRef::Url("http://127.0.0.1:9/x.jpg".into()))
                .await
                .unwrap_err();
            assert!(matches!(err, FetchError::Network { .. }), "{err:?}");
        });
        return;
    }
    let proxy = Fake::ok("from the proxy");
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "embed::fetch::tests::environment_proxies_are_ignored",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        child.env(var, &proxy_url);
    }
    let out = child.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child ran the test"
    );
    assert_eq!(proxy.hits(), 0, "{:?}", proxy.heads.lock().unwrap());
}

#[tokio::test]
async fn a_configured_proxy_still_applies_the_destination_rules() {
    let proxy = Fake::ok("via proxy");
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let f = fetcher_with(None, "", Some(&proxy_url));
    for url in [
        "http://localhost:9/x.jpg",
        "http://127.0.0.1:9/x.jpg",
        "http://[::1]:9/x.jpg",
        "http://10.0.0.1/x.jpg",
    ] {
        assert!(refused(f.fetch(&ImageRef::Url(url.into())).await), "{url}");
    }
    // The proxy itself is not a destination.
    assert!(refused(
        f.fetch(&ImageRef::Url(format!("{proxy_url}/x"))).await
    ));
    assert_eq!(proxy.hits(), 0);
    // An allowed target goes through the proxy.
    let f = fetcher_with(None, "localhost:9", Some(&proxy_url));
    let got = f
        .fetch(&ImageRef::Url("http://localhost:9/x.jpg".into()))
        .await
        .unwrap();
    assert_eq!(&got[..], b"via proxy");
    let heads = proxy.heads.lock().unwrap();
    assert!(
        heads[0].starts_with("GET http://localhost:9/x.jpg"),
        "{heads:?}"
    );
}

#[test]
fn public_texts_carry_no_urls_paths_or_credentials() {
    let url = Url::parse("https://user:pw-123@img.example.com/secret/path.jpg").unwrap();
    let errors = [
        FetchError::NoBaseUrl("k".into()),
        FetchError::InvalidUrl {
            url: shown(&url),
            reason: "r".into(),
        },
        FetchError::Refused {
            url: shown(&url),
            reason: "10.0.0.1 is internal".into(),
        },
        FetchError::NotFound("/srv/img/secret/path.jpg".into()),
        FetchError::Status {
            url: shown(&url),
            status: 503,
        },
        FetchError::TooLarge {
            url: shown(&url),
            cap: 7,
        },
        FetchError::Timeout(shown(&url)),
        FetchError::Network {
            url: shown(&url),
            reason: "tcp connect error: Connection refused".into(),
        },
        FetchError::Local {
            url: "/srv/img/x".into(),
            reason: "EIO".into(),
            transient: false,
        },
        FetchError::Config("x".into()),
    ];
    for e in &errors {
        let public = e.to_string();
        assert!(
            public.starts_with(e.public_reason().split(' ').next().unwrap()),
            "{public}"
        );
        for leak in [
            "secret", "path", "pw-123", "user", "10.0.0.1", "refused", "/srv", "EIO",
        ] {
            if leak == "refused" && matches!(e, FetchError::Refused { .. }) {
                continue;
            }
            assert!(!public.contains(leak), "{public} leaks {leak}");
        }
        assert!(!e.detail().contains("pw-123"), "{}", e.detail());
        assert!(!e.detail().contains("user:"), "{}", e.detail());
    }
    assert!(
        errors[4]
            .detail()
            .contains("img.example.com/secret/path.jpg")
    );
    assert!(errors[4].to_string().contains("503"));
}

#[tokio::test]
async fn local_allocation_and_io_failures_are_permanent() {
    let e = FetchError::Local {
        url: String::new(),
        reason: "out of memory".into(),
        transient: false,
    };
    assert!(!e.is_transient());
    // Over the cap is permanent as well.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.png"), vec![0u8; 2048]).unwrap();
    let f = fetcher(
        Some(Url::from_directory_path(dir.path()).unwrap().as_str()),
        "",
    );
    let err = f.fetch(&ImageRef::Key("big.png".into())).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }) && !err.is_transient());
}
