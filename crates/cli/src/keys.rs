//! `tessera keys new`: mint an API key and print the config entry to paste.

use clap::{Args, Subcommand};
use tessera_model::{OrgId, SandboxName};
use tessera_server::auth::{new_key, Role};

/// Key management commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint a new key; prints the secret once and the `[[auth.keys]]` entry for the config.
    New(NewKeyArgs),
}

/// Flags of `tessera keys new`.
#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// Organisation the key is granted in (x-gw-ims-org-id).
    #[arg(long)]
    org: String,
    /// Sandboxes covered (repeatable); `*` for all.
    #[arg(long = "sandbox", default_value = "*")]
    sandboxes: Vec<String>,
    /// Role: read, write or admin.
    #[arg(long, value_parser = parse_role, default_value = "read")]
    role: Role,
}

fn parse_role(text: &str) -> Result<Role, String> {
    match text {
        "read" => Ok(Role::Read),
        "write" => Ok(Role::Write),
        "admin" => Ok(Role::Admin),
        other => Err(format!("unknown role {other:?}: use read, write or admin")),
    }
}

/// Runs a keys command.
pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::New(args) => {
            let org = OrgId::parse(&args.org)?;
            for sandbox in args.sandboxes.iter().filter(|s| s.as_str() != "*") {
                SandboxName::parse(sandbox)?;
            }
            let key = new_key();
            let sandboxes = args
                .sandboxes
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            println!("client id (x-api-key):            {}", key.client_id);
            println!("secret (Authorization: Bearer):   {}", key.secret);
            println!("The secret is shown only now; the config keeps only its hash.");
            println!();
            println!("# paste into the config file:");
            println!("[[auth.keys]]");
            println!("client_id = {:?}", key.client_id);
            println!("secret_hash = {:?}", key.secret_hash.encode());
            println!(
                "grants = [{{ org = {:?}, sandboxes = [{sandboxes}], role = \"{}\" }}]",
                org.as_str(),
                args.role
            );
            Ok(())
        }
    }
}
