//! `tessera serve`: configuration, logging, runtime and signal handling around the server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tessera_server::{Overrides, Server, ServerConfig};
use tessera_store::Durability;
use tracing_subscriber::EnvFilter;

/// Flags of `tessera serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TESSERA_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory of the embedded store [default: ./tessera-data].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file (API keys, defaults for the other flags).
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// When writes are acknowledged: after fsync (`sync`) or after the OS has them (`relaxed`).
    #[arg(long, env = "TESSERA_DURABILITY", value_enum)]
    durability: Option<DurabilityArg>,
    /// Load a generated demo customer base (schemas, datasets, profiles, events) into the
    /// demo organisation's `prod` sandbox at start, unless it is already there.
    #[arg(long)]
    demo: bool,
    /// Organisation the demo data goes to.
    #[arg(long, default_value = "DEMO@AdobeOrg", requires = "demo")]
    demo_org: String,
    /// People in the demo data set.
    #[arg(long, default_value_t = 10_000, requires = "demo")]
    demo_people: u64,
    /// Log format.
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Sync,
    Relaxed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// Writes a line for whoever started us. A closed stdout (the starter stopped reading) must
/// not take the server down, so write errors are ignored — `println!` would panic.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Percent-encodes a query value (`+` in a phone number would read as a space).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        durability: args.durability.map(|d| match d {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Relaxed => Durability::Relaxed,
        }),
    };
    let config = ServerConfig::load(args.config.as_deref(), overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tessera")
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let mode = match &config.auth {
            tessera_server::auth::AuthMode::Dev => "dev (no keys; loopback only)".to_owned(),
            tessera_server::auth::AuthMode::Keys(ring) => format!("{} api key(s)", ring.len()),
        };
        let data_dir = config.data_dir.display().to_string();
        let durability = config.durability;
        let server = Server::bind(config).await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, data_dir, ?durability, auth = %mode, "tessera listening");
        // Machine-readable line for scripts and tests that start the server on port 0.
        say(&format!("tessera listening on http://{addr}"));
        if args.demo {
            let tenant = tessera_model::Tenant::parse(&args.demo_org, "prod")?;
            let state = server.state().clone();
            let people = args.demo_people;
            let org = args.demo_org.clone();
            let lookups = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let loaded = crate::demo::load(&state, &tenant, people, 42)?;
                if loaded.already_loaded {
                    tracing::info!(%org, "demo data already loaded; reusing it");
                } else {
                    say(&format!(
                        "loading the demo: {people} people, {} records, through batch ingestion",
                        loaded.records
                    ));
                    crate::demo::wait_for_ingestion(&state, &tenant, &loaded)?;
                }
                crate::demo::stitched_person(&state, &tenant)
            })
            .await??;
            let headers = format!("-H 'x-gw-ims-org-id: {0}' -H 'x-sandbox-name: prod'", args.demo_org);
            say(&format!("demo data: organization {} sandbox prod", args.demo_org));
            match lookups {
                Some(identities) => {
                    say("one stitched customer, looked up by email, by phone and by ECID:");
                    for (namespace, id) in identities {
                        say(&format!(
                            "  curl -s {headers} 'http://{addr}/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityIdNS={namespace}&entityId={}'",
                            url_encode(&id)
                        ));
                    }
                }
                None => say(&format!(
                    "  curl -s {headers} http://{addr}/data/foundation/catalog/batches"
                )),
            }
        }
        server.serve(shutdown_signal()).await?;
        Ok(())
    })
}
