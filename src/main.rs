//! The `vitrine` command: thin on purpose. It parses the command line, loads
//! settings (flags are their last layer), starts logging and hands over to
//! the library: `serve` to [`vitrine::Application`], the rest to
//! [`vitrine::commands`].

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vitrine::{Application, Settings, commands};

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
    /// A Telegram bot's webhook at the Bot API: the default bot
    /// (TELEGRAM_BOT_TOKEN), or with --bot a bot stored in the database.
    Telegram {
        /// The bot's id (its token's digits before ':'); default: the
        /// default bot.
        #[arg(long, global = true)]
        bot: Option<String>,
        #[command(subcommand)]
        what: TelegramCommand,
    },
    /// Benchmarks that use the service's own code paths (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: cli::bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum TelegramCommand {
    /// Register the webhook, with TELEGRAM_WEBHOOK_SECRET as its secret
    /// token.
    SetWebhook {
        /// This server's public https base (the bot's route is added), or
        /// the full webhook URL.
        #[arg(long)]
        url: url::Url,
        /// Drop the updates Telegram holds for the bot.
        #[arg(long)]
        drop_pending_updates: bool,
    },
    /// Remove the webhook.
    DeleteWebhook {
        #[arg(long)]
        drop_pending_updates: bool,
    },
    /// Show what Telegram reports: the URL, pending updates, the last error.
    WebhookInfo,
}

/// Settings from every layer, with the flags on top.
fn settings(data_dir: Option<PathBuf>) -> anyhow::Result<Settings> {
    let mut s = Settings::load()?;
    if let Some(d) = data_dir {
        s.data_dir = d;
    }
    Ok(s)
}

fn bar(template: &str) -> ProgressBar {
    ProgressBar::new(0).with_style(ProgressStyle::with_template(template).expect("valid template"))
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
                s.server.bind = b;
            }
            vitrine::telemetry::init_logs(s.log_format);
            let app = Application::build(s).await?;
            app.run_until(vitrine::app::shutdown_signal()).await
        }
        Command::Import { file, data_dir } => {
            let s = settings(data_dir)?;
            let bar = bar("{bar:40} {pos}/{len} events  {msg}");
            let shown = std::cell::Cell::new(0);
            let report = commands::import::run(&s, &file, |line, total, r| {
                bar.set_length(total as u64);
                bar.set_position(line as u64);
                for (n, why) in &r.invalid[shown.get()..] {
                    bar.println(format!("line {n}: skipped: {why}"));
                }
                shown.set(r.invalid.len());
                bar.set_message(format!(
                    "{} queued, {} already there, {} invalid",
                    r.queued,
                    r.duplicates,
                    r.invalid.len()
                ));
            })
            .await?;
            bar.finish();
            println!(
                "imported {}: {} queued, {} already queued, {} invalid; `vitrine serve` processes them",
                file.display(),
                report.queued,
                report.duplicates,
                report.invalid.len()
            );
            Ok(())
        }
        Command::Sign { file, secret } => {
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let secret = match secret {
                Some(s) => s,
                None => settings(None)?
                    .bakai
                    .webhook_secret
                    .first()
                    .map(|s| s.expose().to_string())
                    .context("no secret: pass --secret or set WEBHOOK_SECRET")?,
            };
            println!("X-Webhook-Signature: {}", commands::sign(&secret, &body));
            Ok(())
        }
        Command::Reindex { data_dir } => {
            let s = settings(data_dir)?;
            vitrine::telemetry::init_logs(s.log_format);
            let bar = bar("{bar:40} {pos}/{len} products  {eta} left");
            let report = commands::reindex::run(&s, |done, total| {
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
            let url = commands::migrate(&settings(data_dir)?).await?;
            println!("migrations applied to {url}");
            Ok(())
        }
        Command::Telegram { bot, what } => {
            use commands::telegram::WebhookCommand;
            let cmd = match what {
                TelegramCommand::SetWebhook {
                    url,
                    drop_pending_updates,
                } => WebhookCommand::Set {
                    url,
                    drop_pending: drop_pending_updates,
                },
                TelegramCommand::DeleteWebhook {
                    drop_pending_updates,
                } => WebhookCommand::Delete {
                    drop_pending: drop_pending_updates,
                },
                TelegramCommand::WebhookInfo => WebhookCommand::Info,
            };
            let answer = commands::telegram::run(&settings(None)?, bot.as_deref(), cmd).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Bench { what } => cli::bench::run(what).await,
    }
}
