//! Health that tells the truth about the database: a background probe runs
//! `SELECT 1` on its own connection and sets every service SERVING or
//! NOT_SERVING by the answer. A failed probe also tells the store, which
//! then drops the pooled connections that the outage killed, so that once
//! health says SERVING again, requests get live connections.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

use crate::store::Store;

/// The services whose health follows the database, with "" for the whole server.
pub const SERVICES: [&str; 4] = ["", "fathom.v1.Collections", "fathom.v1.Documents", "fathom.v1.Search"];

/// The gRPC health service, and the probe that keeps it true: spawned here,
/// on a connection of its own to `database`, it runs until `stop` is
/// cancelled.
pub(crate) async fn start(
    database: PgConnectOptions,
    store: Store,
    interval: Duration,
    stop: CancellationToken,
) -> (HealthServer<impl Health>, JoinHandle<()>) {
    let (reporter, health) = tonic_health::server::health_reporter();
    // Until the first probe answers, nothing is known to work.
    for service in SERVICES {
        reporter.set_service_status(service, ServingStatus::NotServing).await;
    }
    // Named, so `fathom serve` can tell a cluster some fathom is serving from.
    let options = database.application_name("fathom-health");
    let probe = tokio::spawn(probe_database(options, reporter, store, interval, stop));
    (health, probe)
}

/// Probes every `interval` until `stop` is cancelled. A probe that takes
/// longer than `interval` counts as a failure, so a hung database turns
/// NOT_SERVING as quickly as a stopped one.
async fn probe_database(
    options: PgConnectOptions,
    reporter: HealthReporter,
    store: Store,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut connection: Option<PgConnection> = None;
    let mut last: Option<ServingStatus> = None;
    loop {
        let healthy = tokio::time::timeout(interval, async {
            if connection.is_none() {
                connection = Some(PgConnection::connect_with(&options).await?);
            }
            let conn = connection.as_mut().expect("connected above");
            sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
        })
        .await
        .is_ok_and(|r| r.is_ok());
        crate::metrics::postgres_up(healthy);
        if !healthy {
            connection = None;
            store.record_outage();
        }
        let status = if healthy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            tracing::info!(?status, "database health changed");
            for service in SERVICES {
                reporter.set_service_status(service, status).await;
            }
            last = Some(status);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
