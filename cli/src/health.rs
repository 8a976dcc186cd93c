//! `fathom health`: asks a server's `grpc.health.v1.Health/Check` whether it
//! is SERVING, for container health checks (docker-compose) and scripts.

use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::connection::ConnectionArgs;

/// Options of `fathom health`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The service to ask about; empty means the server as a whole.
    #[arg(long, default_value = "")]
    service: String,
    /// Seconds to wait for the connection and the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Succeeds, printing `SERVING`, only if the server answers SERVING;
/// otherwise fails with the status or the error. Connects as the other
/// client commands do (API key, TLS).
pub async fn health(connection: &ConnectionArgs, args: HealthArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout);
    let client = connection.connect_within(timeout).await?;
    let mut request = tonic::Request::new(HealthCheckRequest { service: args.service });
    request.set_timeout(timeout);
    let response = HealthClient::new(client.transport())
        .check(request)
        .await
        .map_err(|status| anyhow::anyhow!("health check failed: {}: {}", status.code(), status.message()))?;
    let status = response.into_inner().status();
    if status != ServingStatus::Serving {
        anyhow::bail!("not serving: {}", status.as_str_name());
    }
    outln!("{}", status.as_str_name())?;
    Ok(())
}
