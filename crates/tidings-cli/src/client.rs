//! What `publish` and `subscribe` share: where the hub is and how to reach it.

use clap::Args;

#[derive(Args)]
pub struct HubArgs {
    /// The hub URL.
    #[arg(
        long,
        env = "TIDINGS_HUB",
        default_value = "http://127.0.0.1:8080/.well-known/mercure"
    )]
    pub hub: String,
    /// Accept the hub's certificate without verification (self-signed development hubs).
    #[arg(long)]
    pub insecure: bool,
}

impl HubArgs {
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .danger_accept_invalid_certs(self.insecure)
            .build()?)
    }
}
