//! `vitrine import FILE`: bulk-loads a catalog (JSON lines) through the
//! inbox. Each line is a product event, or a bare product object imported
//! as `product.created`.

use std::{io::BufRead, path::Path};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::{
    catalog::{self, RawEvent},
    config::Settings,
};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub queued: usize,
    pub duplicates: usize,
    /// `(line number, reason)` of each line that was skipped.
    pub invalid: Vec<(usize, String)>,
}

/// Turns one JSONL line into an event body: events pass through; bare
/// products become `product.created` with an id derived from the line, so
/// importing the same file twice does not queue anything twice. The event
/// time is the line's `updated_at` (or `timestamp`) when present, else now:
/// an import then never overrides a newer change that arrived by webhook.
fn line_to_event(line: &str) -> anyhow::Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(line).context("not valid JSON")?;
    if v.get("event_type").is_some() {
        return Ok(v);
    }
    let digest = hex::encode(&Sha256::digest(line.as_bytes())[..8]);
    let id = v
        .get("product_id")
        .map(|p| p.to_string().trim_matches('"').to_string())
        .unwrap_or_default();
    Ok(serde_json::json!({
        "event_type": "product.created",
        "event_id": format!("import:{id}:{digest}"),
        "timestamp": v.get("updated_at").or_else(|| v.get("timestamp")).cloned()
            .unwrap_or_else(|| chrono::Utc::now().to_rfc3339().into()),
        "data": v,
    }))
}

/// Queues every valid line of `file`. `progress(line_number, &report)` is
/// called after each line.
pub async fn run(
    settings: &Settings,
    file: &Path,
    progress: impl Fn(usize, usize, &ImportReport),
) -> anyhow::Result<ImportReport> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()?;
    let (db, inbox) = crate::app::open_inbox(settings).await?;
    let mut report = ImportReport::default();
    for (n, line) in lines.iter().enumerate() {
        if !line.trim().is_empty() {
            let checked = line_to_event(line).and_then(|body| {
                let raw: RawEvent = serde_json::from_value(body.clone())?;
                let ev = catalog::validate(raw)?;
                // As the webhook does: a far-future date would freeze its product.
                ev.check_clock(chrono::Utc::now(), settings.bakai.max_clock_skew())?;
                Ok((ev, body))
            });
            match checked {
                Err(e) => report.invalid.push((n + 1, format!("{e:#}"))),
                Ok((ev, body)) => {
                    let ins = inbox.insert(ev.to_new_event(body.to_string())).await?;
                    if ins.duplicate {
                        report.duplicates += 1;
                    } else {
                        report.queued += 1;
                    }
                }
            }
        }
        progress(n + 1, lines.len(), &report);
    }
    drop(inbox);
    db.close().await;
    Ok(report)
}
