//! `tessera inlet create`: a streaming connection, through the Flow Service API.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client::{Api, ClientArgs};

/// Streaming connection commands.
#[derive(Debug, Subcommand)]
pub enum InletCommand {
    /// Create a streaming connection and print its id and URL.
    Create(CreateArgs),
}

/// Flags of `tessera inlet create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Stable id to use instead of a generated one (letters, digits, '-', '_', '.').
    #[arg(long)]
    id: Option<String>,
    /// Dataset messages go to when they do not name one.
    #[arg(long)]
    dataset: Option<String>,
    /// Display name.
    #[arg(long, default_value = "streaming connection")]
    name: String,
    /// Accept messages without credentials (AEP's open inlet).
    #[arg(long)]
    open: bool,
}

/// Runs an inlet command.
pub fn run(command: InletCommand) -> anyhow::Result<()> {
    match command {
        InletCommand::Create(args) => {
            let api = Api::new(args.client)?;
            let mut params = serde_json::Map::new();
            params.insert("dataType".into(), json!("xdm"));
            params.insert("name".into(), json!(args.name));
            if let Some(dataset) = &args.dataset {
                params.insert("datasetId".into(), json!(dataset));
            }
            if args.open {
                params.insert("authenticationRequired".into(), json!(false));
            }
            let mut body = serde_json::Map::new();
            body.insert("name".into(), json!(args.name));
            body.insert(
                "connectionSpec".into(),
                json!({ "id": "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", "version": "1.0" }),
            );
            body.insert(
                "auth".into(),
                json!({ "specName": "Streaming Connection", "params": params }),
            );
            if let Some(id) = &args.id {
                body.insert("id".into(), json!(id));
            }
            let created = api.send(
                api.request(
                    reqwest::Method::POST,
                    "/data/foundation/flowservice/connections",
                )
                .json(&body),
            )?;
            let id = created
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let url = created
                .get("inletUrl")
                .and_then(Value::as_str)
                .unwrap_or_default();
            println!("inlet id:  {id}");
            println!("inlet url: {url}");
            Ok(())
        }
    }
}
