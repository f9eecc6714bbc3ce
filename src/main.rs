//! The `vitrine` command: thin on purpose. It parses the command line, loads
//! settings and hands over to the library.

use std::{io::BufRead, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use vitrine::{
    Application, Settings,
    catalog::{self, RawEvent, sync},
    http::signature,
    inbox::NewEvent,
};

mod cli;

#[derive(Parser)]
#[command(
    name = "vitrine",
    version,
    about = "Visual product search kept in sync with a marketplace catalog"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the workers.
    Serve {
        /// Listen address (overrides VITRINE_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Data directory (overrides VITRINE_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Bulk-load a catalog (JSON lines) through the inbox. Each line is a
    /// product event, or a bare product object, imported as `product.created`.
    Import {
        file: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the X-Webhook-Signature header for a body file.
    Sign {
        file: PathBuf,
        /// Key to sign with; defaults to the first WEBHOOK_SECRET.
        #[arg(long, env = "VITRINE_SIGN_SECRET")]
        secret: Option<String>,
    },
    /// Re-embed every live product with the model in VITRINE_MODEL_DIR into
    /// that model version's index, then switch the live alias to it.
    /// Resumable: products already in the target index are skipped.
    Reindex {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Benchmarks that use the service's own code paths (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: cli::bench::BenchCommand,
    },
}

fn settings(data_dir: Option<PathBuf>) -> anyhow::Result<Settings> {
    let mut s = Settings::load()?;
    if let Some(d) = data_dir {
        s.data_dir = d;
    }
    Ok(s)
}

#[tokio::main]
async fn main() {
    // One TLS crypto provider for every client in the process (reqwest,
    // Qdrant REST, S3): ring, the only one compiled in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = run(Cli::parse()).await {
        // One readable line (with its causes), never a panic backtrace.
        eprintln!("vitrine: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { bind, data_dir } => {
            let mut s = settings(data_dir)?;
            if let Some(b) = bind {
                s.bind = b;
            }
            vitrine::telemetry::init_logs(&s.log_format);
            if s.webhook_secret.is_empty() {
                tracing::warn!("WEBHOOK_SECRET is not set: webhooks will be refused with 503");
            }
            let app = Application::build(s).await?;
            app.run_until_stopped(true).await
        }
        Command::Import { file, data_dir } => import(settings(data_dir)?, &file).await,
        Command::Sign { file, secret } => {
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let secret = match secret {
                Some(s) => s,
                None => settings(None)?
                    .webhook_secrets()
                    .first()
                    .map(|s| s.expose().to_string())
                    .context("no secret: pass --secret or set WEBHOOK_SECRET")?,
            };
            println!("X-Webhook-Signature: {}", signature::sign(&secret, &body));
            Ok(())
        }
        Command::Reindex { data_dir } => {
            let s = settings(data_dir)?;
            vitrine::telemetry::init_logs(&s.log_format);
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} products  {eta} left")
                    .expect("valid template"),
            );
            let report = vitrine::index::reindex::run(&s, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await?;
            bar.finish();
            for (id, err) in &report.failed {
                eprintln!("product {id}: {err}");
            }
            println!(
                "reindexed into {} (model {}): {} embedded, {} already there, {} failed; it is now live",
                report.target,
                &report.model_version[..12],
                report.embedded,
                report.skipped,
                report.failed.len()
            );
            Ok(())
        }
        Command::Migrate { data_dir } => {
            let s = settings(data_dir)?;
            vitrine::app::open_inbox(&s).await?;
            println!("migrations applied to {}", s.database_url());
            Ok(())
        }
        Command::Bench { what } => cli::bench::run(what).await,
    }
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

async fn import(settings: Settings, file: &PathBuf) -> anyhow::Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()?;
    let (_, inbox) = vitrine::app::open_inbox(&settings).await?;
    let bar = ProgressBar::new(lines.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events  {msg}").expect("valid template"),
    );
    let (mut queued, mut duplicates, mut bad) = (0, 0, 0);
    for (n, line) in lines.iter().enumerate() {
        bar.inc(1);
        if line.trim().is_empty() {
            continue;
        }
        let checked = line_to_event(line).and_then(|body| {
            let raw: RawEvent = serde_json::from_value(body.clone())?;
            let ev = catalog::validate(raw)?;
            Ok((ev, body))
        });
        let (ev, body) = match checked {
            Ok(x) => x,
            Err(e) => {
                bad += 1;
                bar.println(format!("line {}: skipped: {e:#}", n + 1));
                continue;
            }
        };
        let ins = inbox
            .insert(NewEvent {
                provider: sync::PROVIDER.into(),
                external_id: ev.event_id.clone(),
                event_type: ev.kind.as_str().into(),
                event_subtype: Some(ev.kind.subtype().into()),
                entity_type: Some(sync::ENTITY.into()),
                entity_id: Some(ev.data.product_id.clone()),
                payload: body.to_string(),
            })
            .await?;
        if ins.duplicate {
            duplicates += 1;
        } else {
            queued += 1;
        }
        bar.set_message(format!(
            "{queued} queued, {duplicates} already there, {bad} invalid"
        ));
    }
    bar.finish();
    println!(
        "imported {}: {queued} queued, {duplicates} already queued, {bad} invalid; `vitrine serve` processes them",
        file.display()
    );
    Ok(())
}
