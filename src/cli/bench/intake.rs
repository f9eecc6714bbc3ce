//! `vitrine bench intake`: a loopback load client for the webhook endpoint.
//! Signed `product.updated` events at a fixed number of keep-alive
//! connections, against the trivial `GET /api/v1/webhooks/health` of the
//! same server (the ceiling), with the CPU both processes used.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use vitrine::http::signature;

use super::stats::{Summary, cores, load_1m, quantile, round3};

pub struct IntakeOptions {
    pub url: String,
    pub secret: String,
    pub connections: usize,
    pub seconds: f64,
    pub reps: usize,
    /// The server's process id, to report the CPU it used in each phase.
    pub server_pid: Option<u32>,
}

/// CPU seconds (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (ticks of 1/100 s, Linux's USER_HZ).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, the 12th and 13th after the name.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// What one phase measured.
#[derive(Debug, Default)]
struct Phase {
    ok: u64,
    failed: u64,
    /// Latencies of the successful requests, in milliseconds.
    latencies_ms: Vec<f64>,
    secs: f64,
    first_error: Option<String>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    fn sorted(&mut self) -> &[f64] {
        self.latencies_ms.sort_by(f64::total_cmp);
        &self.latencies_ms
    }
}

#[derive(Clone, Copy)]
enum Target {
    Webhook,
    Health,
}

/// A signed `product.updated` event without an image (metadata only, so
/// the workers that drain the inbox meanwhile do not fetch anything).
fn event_body(run: &str, conn: usize, seq: u64) -> String {
    json!({
        "event_type": "product.updated",
        "event_id": format!("load-{run}-{conn}-{seq}"),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {
            "product_id": format!("load-{conn}-{}", seq % 100),
            "title": "Load test product",
            "category": "loadtest",
            "price": (seq % 1000) as f64 + 0.5,
            "currency": "KGS",
        }
    })
    .to_string()
}

async fn phase(opts: &IntakeOptions, target: Target, secs: f64) -> anyhow::Result<Phase> {
    let base = opts.url.trim_end_matches('/').to_string();
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for conn in 0..opts.connections.max(1) {
        // One client, hence one keep-alive connection, per simulated sender.
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        let (base, secret, run) = (base.clone(), opts.secret.clone(), run.clone());
        tasks.spawn(async move {
            let mut p = Phase::default();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let result = match target {
                    Target::Webhook => {
                        let body = event_body(&run, conn, seq);
                        let sig = signature::sign(&secret, body.as_bytes());
                        client
                            .post(format!("{base}/api/v1/webhooks/bakai"))
                            .header("content-type", "application/json")
                            .header("x-webhook-signature", sig)
                            .body(body)
                            .send()
                            .await
                    }
                    Target::Health => {
                        client
                            .get(format!("{base}/api/v1/webhooks/health"))
                            .send()
                            .await
                    }
                };
                seq += 1;
                let outcome = match result {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(body) if status.is_success() => {
                                // A duplicate would not be a new event.
                                if matches!(target, Target::Webhook)
                                    && body.windows(11).any(|w| w == b"\"duplicate\"")
                                {
                                    Err("answered as a duplicate".to_string())
                                } else {
                                    Ok(())
                                }
                            }
                            Ok(body) => Err(format!(
                                "HTTP {status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            )),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        p.ok += 1;
                        p.latencies_ms.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Err(e) => {
                        p.failed += 1;
                        p.first_error.get_or_insert(e);
                    }
                }
            }
            p
        });
    }
    let mut all = Phase::default();
    while let Some(p) = tasks.join_next().await {
        let p = p?;
        all.ok += p.ok;
        all.failed += p.failed;
        all.latencies_ms.extend(p.latencies_ms);
        if all.first_error.is_none() {
            all.first_error = p.first_error;
        }
    }
    all.secs = started.elapsed().as_secs_f64();
    Ok(all)
}

/// Runs the ceiling (health endpoint) phases first, while the server's inbox
/// is still empty, then the webhook phases; returns the JSON report.
pub async fn intake(opts: &IntakeOptions) -> anyhow::Result<Value> {
    let url = url::Url::parse(&opts.url).context("--url")?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {}
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {}
        Some(url::Host::Domain("localhost")) => {}
        _ => bail!("the load test only targets loopback addresses, not {url}"),
    }
    if opts.reps == 0 || opts.seconds <= 0.0 {
        bail!("--reps and --seconds must be positive");
    }
    // reqwest is built with rustls and no default provider; plain http never
    // uses it, but a client cannot be built without one. A no-op if set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    eprintln!(
        "intake bench: {} connections, {} × {}s per phase, against {}",
        opts.connections, opts.reps, opts.seconds, opts.url
    );
    // Warm-up: connections opened, the server's first requests served.
    let warm = phase(opts, Target::Health, 1.0).await?;
    if warm.ok == 0 {
        bail!(
            "the server does not answer: {}",
            warm.first_error.unwrap_or_default()
        );
    }
    let load_before = load_1m();
    let mut report = json!({
        "bench": "intake",
        "connections": opts.connections,
        "seconds": opts.seconds,
        "reps": opts.reps,
        "cores": cores(),
    });
    let mut medians = Vec::new();
    for (name, target) in [
        ("ceiling_health", Target::Health),
        ("webhook", Target::Webhook),
    ] {
        let (mut runs, mut rates, mut p50s, mut p99s) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rep in 0..opts.reps {
            let server = opts.server_pid.map(|p| p.to_string());
            let cpu_before = (server.as_deref().and_then(cpu_secs), cpu_secs("self"));
            let mut p = phase(opts, target, opts.seconds).await?;
            // CPU used during the phase, in cores (1.0 = one core busy).
            let busy = |before: Option<f64>, now: Option<f64>| {
                before.zip(now).map(|(b, n)| round3((n - b) / p.secs))
            };
            let server_cores = busy(cpu_before.0, server.as_deref().and_then(cpu_secs));
            let client_cores = busy(cpu_before.1, cpu_secs("self"));
            let rate = p.rate();
            let (ok, failed, first_error) = (p.ok, p.failed, p.first_error.clone());
            let l = p.sorted();
            let (p50, p90, p99, max) = (
                quantile(l, 0.50),
                quantile(l, 0.90),
                quantile(l, 0.99),
                l.last().copied().unwrap_or(f64::NAN),
            );
            eprintln!(
                "  {name} rep {}: {ok} ok, {failed} failed, {rate:.0}/s, p50 {p50:.2} ms, \
                 p90 {p90:.2} ms, p99 {p99:.2} ms, max {max:.1} ms; CPU cores busy: \
                 server {}, load client {}{}",
                rep + 1,
                server_cores.map_or("?".into(), |c| format!("{c:.2}")),
                client_cores.map_or("?".into(), |c| format!("{c:.2}")),
                first_error
                    .as_deref()
                    .map(|e| format!(" (first error: {e})"))
                    .unwrap_or_default()
            );
            rates.push(rate);
            p50s.push(p50);
            p99s.push(p99);
            runs.push(json!({
                "ok": ok, "failed": failed, "per_s": round3(rate),
                "p50_ms": round3(p50), "p90_ms": round3(p90), "p99_ms": round3(p99),
                "max_ms": round3(max), "first_error": first_error,
                "server_cpu_cores": server_cores, "client_cpu_cores": client_cores,
            }));
        }
        let (r, a, b) = (Summary::of(&rates), Summary::of(&p50s), Summary::of(&p99s));
        println!("{name:<15} per second: {r}");
        println!("{name:<15} p50 ms:     {a}");
        println!("{name:<15} p99 ms:     {b}");
        medians.push(r.median);
        report[name] = json!({
            "per_s": r.json(&rates),
            "p50_ms": a.json(&p50s),
            "p99_ms": b.json(&p99s),
            "runs": runs,
        });
    }
    let ratio = medians[1] / medians[0];
    println!("accepted events/s ÷ health requests/s (medians): {ratio:.3}");
    report["ratio_webhook_to_health"] = json!(round3(ratio));
    report["loadavg_1m"] = json!([load_before, load_1m()]);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_events_are_valid_signed_bodies() {
        let body = event_body("r", 3, 42);
        let raw: vitrine::catalog::RawEvent = serde_json::from_str(&body).unwrap();
        let ev = vitrine::catalog::validate(raw).unwrap();
        assert_eq!(ev.event_id, "load-r-3-42");
        let sig = signature::sign("k", body.as_bytes());
        let secrets = [vitrine::config::Secret::new("k")];
        assert!(signature::verify(Some(&sig), body.as_bytes(), &secrets).is_ok());
    }
}
